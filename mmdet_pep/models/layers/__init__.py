from .deform_conv import deform_conv2d
from .erfnet import (ERFNetDecoder, ERFNetDownsampler, ERFNetNonBottleneck1D,
                     ERFNetUpsampler)
from .pep_excavator import PEPExcavator
from .pep_purifier import PEPPurifier

__all__ = [
    'PEPExcavator', 'PEPPurifier', 'deform_conv2d', 'ERFNetDecoder',
    'ERFNetDownsampler', 'ERFNetNonBottleneck1D', 'ERFNetUpsampler'
]
