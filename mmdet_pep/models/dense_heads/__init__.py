from .embedmask_head import EmbedMaskHead
from .pep_head import PEPHead
from .sipmask_head import SipMaskHead

__all__ = ['EmbedMaskHead', 'PEPHead', 'SipMaskHead']
