"""ERFNet building blocks (Romera et al., "ERFNet: Efficient Residual
Factorized ConvNet for Real-Time Semantic Segmentation", T-ITS 2018), as
SpatialEmbeddings' branched ERFNet uses them.

Shape shorthand: B images, C channels, H x W a map.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# ERFNet's batch norms use eps 1e-3 (PyTorch's default is 1e-5).
BN_EPS = 1e-3


class ERFNetDownsampler(nn.Module):
    """Halves the map: a stride-2 3x3 conv to ``out - in`` channels
    concatenated with a 2x2 max pool of the input, then BN and ReLU.

    The pool rounds up (``ceil_mode``) so that an odd map gives the same
    size as the conv (ceil(H / 2)); ERFNet assumes sizes divisible by 8,
    where both agree.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels <= in_channels:
            raise ValueError('a downsampler adds channels: out_channels '
                             f'({out_channels}) must exceed in_channels '
                             f'({in_channels})')
        self.conv = nn.Conv2d(
            in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, ceil(H / 2), ceil(W / 2))."""
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class ERFNetNonBottleneck1D(nn.Module):
    """ERFNet's residual block: two factorised 3x3 convs (3x1 then 1x3),
    the second pair dilated, BN after each pair, spatial dropout, ReLU
    after the sum with the input.

    Args:
        channels (int): C, kept.
        dropout (float): Dropout2d probability (none at 0).
        dilation (int): Dilation of the second pair.
    """

    def __init__(self, channels: int, dropout: float = 0.,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.conv3x1_2 = nn.Conv2d(
            channels, channels, (3, 1), padding=(dilation, 0),
            dilation=(dilation, 1))
        self.conv1x3_2 = nn.Conv2d(
            channels, channels, (1, 3), padding=(0, dilation),
            dilation=(1, dilation))
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.bn2(self.conv1x3_2(out))
        if self.dropout is not None:
            out = self.dropout(out)
        return F.relu(out + x)


class ERFNetUpsampler(nn.Module):
    """Doubles the map: a stride-2 3x3 transposed conv, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, 3, stride=2, padding=1,
            output_padding=1)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, 2 H, 2 W)."""
        return F.relu(self.bn(self.conv(x)))


class ERFNetDecoder(nn.Module):
    """ERFNet's decoder: per stage an upsampler and two non-bottleneck
    blocks without dropout, then a stride-2 2x2 transposed conv to
    ``out_channels``; three x2 steps take stride 8 to the input resolution.

    Args:
        in_channels (int): Channels of the stride-8 input (128 in ERFNet).
        out_channels (int): Output channels.
        stage_channels (Sequence[int]): Channels after each upsampler,
            (64, 16) in ERFNet.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stage_channels: Sequence[int] = (64, 16)) -> None:
        super().__init__()
        layers = []
        for channels in stage_channels:
            layers += [
                ERFNetUpsampler(in_channels, channels),
                ERFNetNonBottleneck1D(channels),
                ERFNetNonBottleneck1D(channels)
            ]
            in_channels = channels
        self.layers = nn.Sequential(*layers)
        self.output_conv = nn.ConvTranspose2d(
            in_channels, out_channels, 2, stride=2)
        self.upsample_ratio = 2**(len(stage_channels) + 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, r H, r W), r = ``upsample_ratio``."""
        return self.output_conv(self.layers(x))
