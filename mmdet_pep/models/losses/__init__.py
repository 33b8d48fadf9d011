from .lovasz_hinge_loss import LovaszHingeLoss, lovasz_hinge
from .spatial_emb_loss import (SpatialEmbLoss, enet_class_weights,
                               instance_gaussians)

__all__ = [
    'LovaszHingeLoss', 'lovasz_hinge', 'SpatialEmbLoss', 'enet_class_weights',
    'instance_gaussians'
]
