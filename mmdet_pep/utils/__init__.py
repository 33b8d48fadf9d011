from .checkpoint import (CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError,
                         load_checkpoint_weights_only,
                         register_checkpoint_safe_globals)
from .config_rewrites import set_data_root, set_max_iters, set_seed
from .launch import (fit_dist_backend, join_cpu_process_group,
                     leave_process_group)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'UnsafeCheckpointError', 'fit_dist_backend',
    'join_cpu_process_group', 'leave_process_group',
    'load_checkpoint_weights_only',
    'register_checkpoint_safe_globals', 'set_data_root', 'set_max_iters',
    'set_seed'
]
