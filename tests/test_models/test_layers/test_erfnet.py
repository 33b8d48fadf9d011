"""The ERFNet blocks: the downsampler's concatenation, the residual
non-bottleneck block, the upsampler and the decoder's output size."""
import pytest
import torch

from mmdet_pep.models.layers import (ERFNetDecoder, ERFNetDownsampler,
                                     ERFNetNonBottleneck1D, ERFNetUpsampler)


def test_downsampler_concatenates_conv_and_pool():
    down = ERFNetDownsampler(3, 16).eval()
    with torch.no_grad():
        down.conv.weight.zero_()
        down.conv.bias.zero_()
    x = torch.arange(2 * 3 * 4 * 4.).view(2, 3, 4, 4)
    out = down(x)
    # The pooled channels come last: BN (eval, fresh stats) is ~identity.
    pooled = torch.nn.functional.max_pool2d(x, 2)
    assert torch.allclose(out[:, 13:], pooled, rtol=1e-3)
    assert torch.all(out[:, :13] == 0)
    with pytest.raises(ValueError, match='out_channels'):
        ERFNetDownsampler(16, 16)


def test_non_bottleneck_is_residual_and_keeps_the_shape():
    """With the second pair's output zeroed (BN weight and bias 0) the
    block is ReLU(x): the residual path alone."""
    block = ERFNetNonBottleneck1D(8, dropout=0.3, dilation=4).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    x = torch.randn(2, 8, 9, 11)
    assert torch.allclose(block(x), x.relu())
    assert block.conv3x1_2.padding == (4, 0)
    assert block.conv1x3_2.padding == (0, 4)
    assert ERFNetNonBottleneck1D(8).dropout is None


def test_upsampler_and_decoder_sizes():
    assert ERFNetUpsampler(8, 4)(torch.randn(1, 8, 5, 7)).shape == (1, 4, 10,
                                                                      14)
    dec = ERFNetDecoder(16, 3, stage_channels=(8, ))
    assert dec.upsample_ratio == 4
    assert dec(torch.randn(1, 16, 5, 6)).shape == (1, 3, 20, 24)
