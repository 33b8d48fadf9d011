from .embedmask_head import EmbedMaskHead
from .pep_head import PEPHead

__all__ = ['EmbedMaskHead', 'PEPHead']
