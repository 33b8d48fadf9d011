from .check_hooks import (PEPCheckInvalidLossHook, PEPNumClassCheckHook,
                          check_num_classes)
from .rng_state_hook import RNGStateHook

__all__ = [
    'PEPCheckInvalidLossHook', 'PEPNumClassCheckHook', 'RNGStateHook',
    'check_num_classes'
]
