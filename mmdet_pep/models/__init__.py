from .backbones import ERFNetEncoder, ResNetDCNInterval
from .dense_heads import (EmbedMaskHead, PEPHead, SipMaskHead, SipMaskPPHead,
                          SpatialEmbHead)
from .detectors import PEP, EmbedMask, SipMask, SpatialEmbeddings
from .layers import PEPExcavator, PEPPurifier
from .losses import LovaszHingeLoss, SpatialEmbLoss
from .trackers import SipMaskVISTracker
from .tracking_heads import SipMaskTrackHead
from .vis import SipMaskVIS

__all__ = [
    'PEP', 'PEPHead', 'PEPExcavator', 'PEPPurifier', 'EmbedMask',
    'EmbedMaskHead', 'LovaszHingeLoss', 'SipMask', 'SipMaskHead',
    'SipMaskPPHead', 'ResNetDCNInterval', 'ERFNetEncoder', 'SpatialEmbHead',
    'SpatialEmbLoss', 'SpatialEmbeddings', 'SipMaskTrackHead', 'SipMaskVIS',
    'SipMaskVISTracker'
]
