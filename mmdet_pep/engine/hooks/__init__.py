from .check_hooks import (PEPCheckInvalidLossHook, PEPNumClassCheckHook,
                          StrictCheckInvalidLossHook, StrictNumClassCheckHook,
                          check_num_classes)
from .rng_state_hook import RNGStateHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .test_time_hook import TestTimeHook

__all__ = [
    'StrictCheckInvalidLossHook', 'StrictNumClassCheckHook', 'RNGStateHook',
    'SafeCheckpointHook', 'TestTimeHook', 'check_num_classes',
    # Deprecated names (removed in 0.3.0).
    'PEPCheckInvalidLossHook', 'PEPNumClassCheckHook'
]
