from .dense_heads import PEPHead
from .detectors import PEP
from .layers import PEPExcavator, PEPPurifier
from .losses import LovaszHingeLoss

__all__ = ['PEP', 'PEPHead', 'PEPExcavator', 'PEPPurifier', 'LovaszHingeLoss']
