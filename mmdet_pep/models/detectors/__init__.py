from .embedmask import EmbedMask
from .pep import PEP

__all__ = ['EmbedMask', 'PEP']
