from .erfnet_encoder import ERFNetEncoder
from .resnet_dcn_interval import ResNetDCNInterval

__all__ = ['ERFNetEncoder', 'ResNetDCNInterval']
