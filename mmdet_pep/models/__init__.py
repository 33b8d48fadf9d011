from .dense_heads import EmbedMaskHead, PEPHead
from .detectors import PEP, EmbedMask
from .layers import PEPExcavator, PEPPurifier
from .losses import LovaszHingeLoss

__all__ = [
    'PEP', 'PEPHead', 'PEPExcavator', 'PEPPurifier', 'EmbedMask',
    'EmbedMaskHead', 'LovaszHingeLoss'
]
