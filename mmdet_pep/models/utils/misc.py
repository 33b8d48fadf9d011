"""Tensor helpers shared by the heads of the zoo.

Shape shorthand: N maps or masks, H x W their size.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def coord_grid(h: int, w: int, device: torch.device) -> Tensor:
    """Normalised (x, y) coordinates of the pixel centres of an h x w map.

    Pixel ``i`` of ``size`` lies at ``(i + 0.5) / size * 2 - 1``, so that
    grids of every resolution over one image share one [-1, 1] frame.

    Returns:
        Tensor: Shape (2, h, w); channel 0 is x, channel 1 is y.
    """
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    y, x = torch.meshgrid(ys * 2 - 1, xs * 2 - 1, indexing='ij')
    return torch.stack([x, y])


def zero_loss(module: nn.Module, ref: Tensor) -> Tensor:
    """A zero that depends on every parameter of ``module``.

    Used when a batch has no targets for a branch: the loss stays exactly 0
    while every parameter still gets a (zero) gradient, so DDP without
    ``find_unused_parameters`` does not stall.
    """
    return sum((p.sum() for p in module.parameters()), ref.new_zeros(())) * 0


def local_peaks(heat: Tensor, kernel: int = 3) -> Tensor:
    """Keep only values that are the maximum of their ``kernel`` window.

    Args:
        heat (Tensor): Shape (N, H, W).

    Returns:
        Tensor: Shape (N, H, W); non-peaks set to 0.
    """
    hmax = F.max_pool2d(heat[:, None], kernel, stride=1, padding=kernel // 2)
    return heat * (hmax[:, 0] == heat)


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight (x1, y1, x2, y2) boxes of boolean masks; empty masks give 0s.

    Args:
        masks (Tensor): Shape (N, H, W), bool.

    Returns:
        Tensor: Shape (N, 4), float32, pixel-edge convention (x2 = last
        column + 1) as in :func:`mmdet.structures.mask.mask2bbox`.
    """
    n, h, w = masks.shape
    if n == 0:
        return masks.new_zeros((0, 4), dtype=torch.float32)
    xs = masks.any(dim=1)  # (N, W)
    ys = masks.any(dim=2)  # (N, H)
    ar_w = torch.arange(w, device=masks.device)
    ar_h = torch.arange(h, device=masks.device)
    x1 = torch.where(xs, ar_w, w).amin(1)
    x2 = torch.where(xs, ar_w, -1).amax(1) + 1
    y1 = torch.where(ys, ar_h, h).amin(1)
    y2 = torch.where(ys, ar_h, -1).amax(1) + 1
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    return boxes * xs.any(1, keepdim=True)


def levels_to_points(mlvl: List[Tensor]) -> Tensor:
    """Per-level maps (B, C, h, w) as one (B, P, C) tensor in the point
    order of mmdet's prior generators (level, row, column)."""
    return torch.cat([lvl.permute(0, 2, 3, 1).flatten(1, 2) for lvl in mlvl],
                     dim=1)


def gt_masks_on_grid(gt_masks, gt_inds: Tensor, size: Tuple[int, int],
                     stride: int) -> Tensor:
    """GT masks resampled onto a map of ``size`` cells of ``stride`` pixels.

    The masks ``gt_inds`` (mmdet ``BitmapMasks``, at the padded input) are
    put on a canvas of the map's extent in pixels (cropped or zero-padded
    at the bottom and right) and resized to ``size`` bilinearly, as the
    official EmbedMask and SipMask codes do before thresholding (EmbedMask
    at > 0, SipMask at > 0.5).

    Returns:
        Tensor: (len(gt_inds), h, w) float in [0, 1] on ``gt_inds``'s
        device.
    """
    masks = gt_masks[gt_inds.cpu().numpy()].to_tensor(
        dtype=torch.float32, device=gt_inds.device)
    h, w = size
    canvas = masks.new_zeros((len(masks), h * stride, w * stride))
    mh = min(masks.shape[-2], canvas.shape[-2])
    mw = min(masks.shape[-1], canvas.shape[-1])
    canvas[:, :mh, :mw] = masks[:, :mh, :mw]
    return F.interpolate(
        canvas[None], size=size, mode='bilinear', align_corners=False)[0]
