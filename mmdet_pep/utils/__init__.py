from .checkpoint import (CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError,
                         load_checkpoint_weights_only,
                         register_checkpoint_safe_globals)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'UnsafeCheckpointError',
    'load_checkpoint_weights_only', 'register_checkpoint_safe_globals'
]
