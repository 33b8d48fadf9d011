"""The PyTorch deformable conv against mmcv's op: values and gradients."""
import pytest
import torch
from mmcv.ops import DeformConv2d

from mmdet_pep.models.layers import deform_conv2d


@pytest.mark.parametrize(
    'channels, kernel, stride, padding, dilation, groups, size', [
        (8, 3, 1, 1, 1, 4, (7, 9)),  # SipMask's alignment conv
        (8, 3, 2, 1, 1, 2, (10, 11)),
        (6, 3, 1, 2, 2, 1, (9, 8)),
        (4, 1, 1, 0, 1, 1, (5, 5)),
        (8, 3, 1, 1, 1, 4, (1, 1)),  # a 1 x 1 level (P7 of small images)
        (4, (3, 1), 1, (1, 0), 1, 2, (6, 4)),
    ])
def test_equals_mmcv_with_gradients(channels, kernel, stride, padding,
                                    dilation, groups, size):
    torch.manual_seed(0)
    conv = DeformConv2d(channels, 5, kernel, stride=stride, padding=padding,
                        dilation=dilation, deform_groups=groups)
    x = torch.randn(2, channels, *size, requires_grad=True)
    kh, kw = conv.kernel_size
    out_h = (size[0] + 2 * conv.padding[0] - dilation * (kh - 1) - 1) \
        // stride + 1
    out_w = (size[1] + 2 * conv.padding[1] - dilation * (kw - 1) - 1) \
        // stride + 1
    # Offsets of a few pixels: samples fall between pixels and outside.
    offset = (torch.randn(2, groups * 2 * kh * kw, out_h, out_w) *
              3).requires_grad_()
    expected = conv(x, offset)
    got = deform_conv2d(x, offset, conv.weight, None, conv.stride,
                        conv.padding, conv.dilation, groups)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    inputs = (x, offset, conv.weight)
    grads = torch.autograd.grad(got.square().sum(), inputs)
    expected_grads = torch.autograd.grad(expected.square().sum(), inputs)
    for g, e in zip(grads, expected_grads):
        assert torch.allclose(g, e, atol=1e-4, rtol=1e-4)


def test_zero_offsets_are_a_plain_conv_and_bias_is_added():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 7)
    weight = torch.randn(3, 4, 3, 3)
    bias = torch.randn(3)
    got = deform_conv2d(x, torch.zeros(1, 18, 6, 7), weight, bias,
                        padding=1)
    assert torch.allclose(
        got, torch.nn.functional.conv2d(x, weight, bias, padding=1),
        atol=1e-5)


def test_shape_errors_are_named():
    x = torch.randn(1, 6, 5, 5)
    with pytest.raises(ValueError, match='4 deform groups'):
        deform_conv2d(x, torch.zeros(1, 72, 5, 5), torch.randn(2, 6, 3, 3),
                      padding=1, deform_groups=4)
    with pytest.raises(ValueError, match='offset of shape'):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), torch.randn(2, 6, 3, 3),
                      padding=1)
