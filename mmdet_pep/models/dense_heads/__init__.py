from .pep_head import PEPHead

__all__ = ['PEPHead']
