from .embedmask import EmbedMask
from .pep import PEP
from .sipmask import SipMask

__all__ = ['EmbedMask', 'PEP', 'SipMask']
