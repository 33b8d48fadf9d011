from .embedmask import EmbedMask
from .pep import PEP
from .sipmask import SipMask
from .spatial_embeddings import SpatialEmbeddings

__all__ = ['EmbedMask', 'PEP', 'SipMask', 'SpatialEmbeddings']
