"""Deformable convolution (v1) in PyTorch ops, for the CPU.

mmcv's ``DeformConv2d`` has a CPU kernel, but its backward pass is slow on
the CPU: it is a loop over im2col columns. The same operation is a
bilinear ``grid_sample`` of every kernel tap followed by one matmul, which
PyTorch runs with its vectorised kernels and differentiates itself.
:func:`deform_conv2d` computes exactly what mmcv's op computes (same offset
layout, sampling positions and zero padding; tested against it, values and
gradients).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair


def deform_conv2d(x: Tensor,
                  offset: Tensor,
                  weight: Tensor,
                  bias: Optional[Tensor] = None,
                  stride: Union[int, Tuple[int, int]] = 1,
                  padding: Union[int, Tuple[int, int]] = 0,
                  dilation: Union[int, Tuple[int, int]] = 1,
                  deform_groups: int = 1) -> Tensor:
    """mmcv's ``deform_conv2d`` (``groups=1``) with ``grid_sample``.

    Args:
        x (Tensor): (B, C, H, W).
        offset (Tensor): (B, deform_groups * 2 * kh * kw, H_out, W_out);
            for group g and kernel tap t (row-major over kh x kw), channel
            ``2 * (g * kh * kw + t)`` is the row offset and the next one
            the column offset, in pixels, as in mmcv.
        weight (Tensor): (C_out, C, kh, kw).
        bias (Tensor, optional): (C_out,).
        stride, padding, dilation: As for ``nn.Conv2d``.
        deform_groups (int): Channel groups sharing one offset field; a
            divisor of C.

    Returns:
        Tensor: (B, C_out, H_out, W_out). Tap t of output (i, j) samples
        ``x`` bilinearly at row ``i * stride - padding + t_row * dilation +
        dy`` (and likewise the column), zero outside the image.
    """
    b, c, h, w = x.shape
    c_out, c_in, kh, kw = weight.shape
    if c_in != c or c % deform_groups:
        raise ValueError(f'deform_conv2d: weight for {c_in} channels and '
                         f'{deform_groups} deform groups, input has {c}')
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(
        dilation)
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = kh * kw
    if offset.shape != (b, deform_groups * 2 * taps, out_h, out_w):
        raise ValueError(f'deform_conv2d: offset of shape '
                         f'{tuple(offset.shape)}, expected '
                         f'{(b, deform_groups * 2 * taps, out_h, out_w)}')
    dtype = offset.dtype
    rows = torch.arange(out_h, device=x.device, dtype=dtype) * sh - ph
    cols = torch.arange(out_w, device=x.device, dtype=dtype) * sw - pw
    tap_rows = (torch.arange(kh, device=x.device, dtype=dtype) *
                dh).repeat_interleave(kw)
    tap_cols = (torch.arange(kw, device=x.device, dtype=dtype) * dw).repeat(kh)
    offset = offset.reshape(b, deform_groups, taps, 2, out_h, out_w)
    y = tap_rows[:, None, None] + rows[:, None] + offset[:, :, :, 0]
    x_pos = tap_cols[:, None, None] + cols[None, :] + offset[:, :, :, 1]
    # grid_sample's align_corners=False frame: pixel p of n sits at
    # (2 p + 1) / n - 1; its zero padding is mmcv's out-of-image rule.
    grid = torch.stack([(2 * x_pos + 1) / w - 1, (2 * y + 1) / h - 1], -1)
    sampled = F.grid_sample(
        x.reshape(b * deform_groups, c // deform_groups, h, w),
        grid.reshape(b * deform_groups, taps * out_h, out_w,
                     2).to(x.dtype),
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)  # (B G, C / G, taps H_out, W_out)
    sampled = sampled.reshape(b, c, taps, out_h * out_w)
    out = torch.einsum('ock,bckn->bon', weight.reshape(c_out, c, taps),
                       sampled)
    out = out.reshape(b, c_out, out_h, out_w)
    if bias is not None:
        out = out + bias[:, None, None]
    return out
