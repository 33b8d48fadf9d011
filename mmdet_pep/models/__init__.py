from .backbones import ResNetDCNInterval
from .dense_heads import EmbedMaskHead, PEPHead, SipMaskHead, SipMaskPPHead
from .detectors import PEP, EmbedMask, SipMask
from .layers import PEPExcavator, PEPPurifier
from .losses import LovaszHingeLoss

__all__ = [
    'PEP', 'PEPHead', 'PEPExcavator', 'PEPPurifier', 'EmbedMask',
    'EmbedMaskHead', 'LovaszHingeLoss', 'SipMask', 'SipMaskHead',
    'SipMaskPPHead', 'ResNetDCNInterval'
]
