from .pep_excavator import PEPExcavator
from .pep_purifier import PEPPurifier

__all__ = ['PEPExcavator', 'PEPPurifier']
