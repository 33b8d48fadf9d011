"""The encoder of ERFNet, SpatialEmbeddings' backbone."""
from typing import Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from ..layers.erfnet import ERFNetDownsampler, ERFNetNonBottleneck1D


@MODELS.register_module()
class ERFNetEncoder(BaseModule):
    """ERFNet's encoder (Romera et al., "ERFNet: Efficient Residual
    Factorized ConvNet for Real-Time Semantic Segmentation", T-ITS 2018) in
    the form SpatialEmbeddings (Neven et al., CVPR 2019) trains it from
    scratch: output stride 8, 128 channels.

    Layers: Downsampler(3 -> 16), Downsampler(16 -> 64), five
    non-bottleneck-1D blocks (64, dropout 0.03, dilation 1),
    Downsampler(64 -> 128), then twice the blocks (128, dropout 0.3) with
    dilations 2, 4, 8, 16. Batch norms with eps 1e-3.

    mmseg's ``ERFNet`` is a different module (encoder and one decoder, one
    dropout rate), and would add mmseg as a dependency.

    Args:
        in_channels (int): Input channels. Defaults to 3.
        stage_channels (tuple[int]): Channels after each downsampler.
        num_blocks_64 (int): Blocks at stride 4.
        dilations (tuple[int]): Dilations of the blocks at stride 8, run
            twice.
        dropouts (tuple[float]): Dropout at stride 4 and at stride 8.
        init_cfg (dict, optional): Initialisation config; PyTorch's
            defaults otherwise, as the official code.
    """

    def __init__(self,
                 in_channels: int = 3,
                 stage_channels: Tuple[int, int, int] = (16, 64, 128),
                 num_blocks_64: int = 5,
                 dilations: Tuple[int, ...] = (2, 4, 8, 16),
                 dropouts: Tuple[float, float] = (0.03, 0.3),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        c1, c2, c3 = stage_channels
        layers = [
            ERFNetDownsampler(in_channels, c1),
            ERFNetDownsampler(c1, c2)
        ]
        layers += [
            ERFNetNonBottleneck1D(c2, dropouts[0], 1)
            for _ in range(num_blocks_64)
        ]
        layers.append(ERFNetDownsampler(c2, c3))
        layers += [
            ERFNetNonBottleneck1D(c3, dropouts[1], d)
            for _ in range(2) for d in dilations
        ]
        self.layers = nn.Sequential(*layers)
        self.out_channels = c3

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """(B, 3, H, W) -> ((B, 128, ceil(H / 8), ceil(W / 8)),)."""
        return (self.layers(x), )
