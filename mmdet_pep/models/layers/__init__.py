from .deform_conv import deform_conv2d
from .pep_excavator import PEPExcavator
from .pep_purifier import PEPPurifier

__all__ = ['PEPExcavator', 'PEPPurifier', 'deform_conv2d']
