from .checkpoint import (CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError,
                         load_checkpoint_weights_only,
                         register_checkpoint_safe_globals)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'UnsafeCheckpointError',
    'load_checkpoint_weights_only', 'register_checkpoint_safe_globals'
]
from .launch import fit_dist_backend  # noqa: E402

__all__ += ['fit_dist_backend']
