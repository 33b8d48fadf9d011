"""ERFNetEncoder: the official layer list, shapes on odd sizes, and the
decoder's x8 upsampling back to them."""
import pytest
import torch

from mmdet.registry import MODELS
from mmdet_pep.models.layers import (ERFNetDecoder, ERFNetDownsampler,
                                     ERFNetNonBottleneck1D)


def test_the_official_layers():
    enc = MODELS.build(dict(type='ERFNetEncoder'))
    layers = list(enc.layers)
    kinds = [type(m).__name__ for m in layers]
    assert kinds == (['ERFNetDownsampler'] * 2 + ['ERFNetNonBottleneck1D'] * 5
                     + ['ERFNetDownsampler'] +
                     ['ERFNetNonBottleneck1D'] * 8)
    assert [m.bn.num_features for m in layers
            if isinstance(m, ERFNetDownsampler)] == [16, 64, 128]
    blocks = [m for m in layers if isinstance(m, ERFNetNonBottleneck1D)]
    assert [b.dropout.p for b in blocks] == [0.03] * 5 + [0.3] * 8
    assert [b.conv3x1_2.dilation[0] for b in blocks
            ] == [1] * 5 + [2, 4, 8, 16] * 2
    assert [b.conv1x3_2.dilation[1] for b in blocks
            ] == [1] * 5 + [2, 4, 8, 16] * 2
    assert all(m.eps == 1e-3 for m in enc.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('shape', [(64, 64), (61, 35)])
def test_stride_8_on_any_size_and_decoder_back_to_full(shape):
    enc = MODELS.build(dict(type='ERFNetEncoder')).eval()
    (feat, ) = enc(torch.rand(2, 3, *shape))
    h, w = shape
    assert feat.shape == (2, 128, -(-h // 8), -(-w // 8))
    dec = ERFNetDecoder(128, 5)
    out = dec(feat)
    assert dec.upsample_ratio == 8
    assert out.shape == (2, 5, 8 * -(-h // 8), 8 * -(-w // 8))
