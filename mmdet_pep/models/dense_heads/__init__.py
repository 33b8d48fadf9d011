from .embedmask_head import EmbedMaskHead
from .fcos_mask_head import FCOSMaskHead
from .pep_head import PEPHead
from .sipmask_head import SipMaskHead
from .sipmask_pp_head import SipMaskPPHead
from .spatial_emb_head import SpatialEmbHead, greedy_cluster

__all__ = [
    'EmbedMaskHead', 'FCOSMaskHead', 'PEPHead', 'SipMaskHead', 'SipMaskPPHead',
    'SpatialEmbHead', 'greedy_cluster'
]
