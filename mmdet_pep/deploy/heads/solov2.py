"""SOLOv2's post-processing (:meth:`SOLOV2Head.predict_by_feat` and
``_predict_by_feat_single``) with static shapes.

The same stages as mmdet's, on the head's own code: ``forward`` gives the
kernels, class logits and mask features, and the head's
``predict_by_feat`` itself does the point NMS (2 x 2 max pooling of the
class probabilities) and flattens the grids to M cells (see
:func:`_flat_preds`); M = sum(num_grids ** 2) does not depend on the
input size. Then, per image::

    cls_scores    (M, C)  class probabilities after point NMS
    kernel_preds  (M, E * d * d), mask_feats (1, E, h, w) at mask_stride

    cells         (K,)    every cell, or the K = MAX_CELLS best (see below)
    mask_probs    (K, h, w) = sigmoid(dynamic conv of the cell's kernel)
    valid pairs   (K, C)  class score > score_thr and mask area > stride
    pair scores   (K, C)  class score x maskness of the cell's mask
    candidates    (P,)    the nms_pre best valid pairs, P = min(nms_pre, K C)
    Matrix NMS    (P,)    :func:`..ops.matrix_nms`, then filter_thr
    instances     (N,)    :func:`..ops.gather_valid`, N <= max_per_img,
                          masks upsampled to (N, H, W), boxes of the masks

What differs from mmdet is only how candidates are kept: mmdet cuts out the
(cell, class) pairs above ``score_thr`` and computes one mask per pair;
here each of K cells gets one mask, shared by its C pairs, and pairs carry
a ``valid`` flag. A mask depends only on its cell, so the masks, areas,
maskness and scores are the same, and the valid pairs are exactly mmdet's.

The cap (the eager head has no bound): :data:`MAX_CELLS` = 1024 cells.
Where the grids have more cells than that (the zoo's synthetic configs
have M = 1144, or M = 3872 with mmdet's default grids, as the COCO
configs), the graph keeps the 1024 cells of highest class score (after
point NMS) and computes masks for those only. A pair can pass
``score_thr`` only in a cell whose best class passes it, so the graph gives
mmdet's results whenever at most 1024 cells of an image have a class score
above ``score_thr``; :func:`num_candidate_cells` counts them, for checking
a model on a data set (the tiny test model has about 30 on its scene).
Without the cap the graph would compute every cell's mask for every
image: at 1333 x 800 with mmdet's grids, 3872 maps of 200 x 336 (about
1 GB each of probabilities and of their products, and 66 G multiply-adds
of dynamic conv at 256 channels), where the eager head computes only
those of the pairs above ``score_thr``.

With the zoo's 1 x 1 kernels (``dynamic_conv_size=1``) only the cells
with a class above ``score_thr`` (and one invalid copy, so that nothing is
empty) get a mask, as in mmdet, by a matrix product that takes a
data-dependent number of kernels; other kernel sizes compute the masks of
all K cells with a Conv (its kernel shape must be known).

mmdet writes zero boxes for SOLOv2; the graph's ``boxes`` are the tight
boxes of the final masks (:func:`mmdet_pep.models.utils.misc.masks_to_boxes`).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops import (boxes_of_masks, gather_valid, matrix_nms, take,
                   topk_candidates, upsample_masks)

# At most this many grid cells get a mask (see the module docstring).
MAX_CELLS = 1024


class _FlatPreds:
    """The head, except that its ``_predict_by_feat_single`` returns its
    inputs: running the head's ``predict_by_feat`` on it gives the
    point-NMSed, flattened predictions of image 0 exactly as ``predict``
    computes them."""

    def __init__(self, head) -> None:
        self._head = head

    def __getattr__(self, name: str):
        return getattr(self._head, name)

    @staticmethod
    def _predict_by_feat_single(kernel_preds: Tensor, cls_scores: Tensor,
                                mask_feats: Tensor, img_meta: dict) -> tuple:
        return kernel_preds, cls_scores, mask_feats


def _flat_preds(head, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """The head's forward and the first part of its ``predict_by_feat``.

    Returns:
        tuple[Tensor]: ``kernel_preds`` (M, E * d * d), ``cls_scores`` (M,
        C) after point NMS and ``mask_feats`` (1, E, h, w) of image 0.
    """
    kernel_preds, cls_preds, mask_feats = head(feats)
    # predict_by_feat overwrites the list of class maps in place.
    return type(head).predict_by_feat(
        _FlatPreds(head), list(kernel_preds), list(cls_preds), mask_feats,
        batch_img_metas=[{}])[0]


def _cell_strides(head, device) -> Tensor:
    """The stride of each of the M cells (M,): a mask counts if its area
    in mask-feature pixels is above it."""
    return torch.cat([
        torch.full((num_grid**2, ), float(stride), device=device)
        for num_grid, stride in zip(head.num_grids, head.strides)
    ])


def num_candidate_cells(detector, feats: Tuple[Tensor]) -> int:
    """How many cells of image 0 have a class score above ``score_thr``:
    the graph gives mmdet's results whenever this is at most
    :data:`MAX_CELLS` (eagerly, for checks on a data set)."""
    head = detector.mask_head
    _, cls_scores, _ = _flat_preds(head, feats)
    return int((cls_scores.max(1).values > head.test_cfg.score_thr).sum())


def solov2_postprocess(detector, feats: Tuple[Tensor], img_h,
                       img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """SOLOv2's instances of image 0 from the neck's features.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4) of the masks, ``scores`` (N,),
        ``labels`` (N,), ``masks`` (N, H, W) bool.
    """
    head = detector.mask_head
    cfg = head.test_cfg
    kernel_preds, cls_scores, mask_feats = _flat_preds(head, feats)
    # Python numbers (the graph's Conv needs a kernel of known shape): the
    # grids do not depend on the input size.
    num_cells = sum(num_grid**2 for num_grid in head.num_grids)
    num_cls = head.cls_out_channels
    strides = _cell_strides(head, cls_scores.device)
    if num_cells > MAX_CELLS:
        _, cells, _ = topk_candidates(
            cls_scores.max(1).values, MAX_CELLS, cfg.score_thr)
        cls_scores, kernel_preds = cls_scores[cells], kernel_preds[cells]
        strides = strides[cells]
        num_cells = MAX_CELLS
    size = head.dynamic_conv_size
    if size == 1:
        # Only the cells with a class above score_thr (the cells mmdet
        # computes a mask for) and one invalid copy, never empty: a 1 x 1
        # dynamic conv is a matrix product, which takes a data-dependent
        # number of kernels (a Conv needs a known kernel shape).
        live = cls_scores.max(1).values > cfg.score_thr
        cells = torch.cat([live.nonzero()[:, 0], live.new_zeros(1).long()])
        alive = live[cells].clone()
        alive[-1] = False
        cls_scores, kernel_preds = cls_scores[cells], kernel_preds[cells]
        strides = strides[cells]
        e, h, w = mask_feats.shape[1:]
        mask_preds = (kernel_preds @ mask_feats.reshape(e, h * w)).reshape(
            -1, h, w).sigmoid()
    else:
        alive = None
        # mask encoding, as mmdet's, one mask per cell.
        kernels = kernel_preds.reshape(num_cells,
                                       head.kernel_out_channels // size**2,
                                       size, size)
        mask_preds = F.conv2d(mask_feats, kernels,
                              stride=1).squeeze(0).sigmoid()
    masks = mask_preds > cfg.mask_thr
    sum_masks = masks.sum((1, 2)).float()
    keep = sum_masks > strides
    if alive is not None:
        keep = keep & alive
    # maskness; cells with no mask are never valid (0 / 0 there).
    mask_scores = (mask_preds * masks).sum((1, 2)) / sum_masks.clamp(min=1)
    valid = (cls_scores > cfg.score_thr) & keep[:, None]
    pair_scores = (cls_scores * mask_scores[:, None]).flatten()
    valid = valid.flatten()

    # Matrix NMS's nms_pre, by the rescored scores of the valid pairs.
    if cfg.nms_pre > 0:
        ranked = torch.where(valid, pair_scores,
                             pair_scores.new_full(pair_scores.shape, -1.))
        # Padded: the number of pairs may be below nms_pre.
        _, pairs, _ = topk_candidates(ranked, cfg.nms_pre, -1.)
        valid = take(valid, pairs, cfg.nms_pre)
        pair_scores = take(pair_scores, pairs, cfg.nms_pre)
        pad = cfg.nms_pre
    else:
        pairs = torch.arange(
            pair_scores.shape[0], device=pair_scores.device)
        pad = 1
    cells = torch.div(pairs, num_cls, rounding_mode='floor')
    labels = pairs % num_cls
    # A padded pair (never valid) may point past the cells: take() pads.
    masks, sum_masks = take(masks, cells, pad), take(sum_masks, cells, pad)
    mask_preds = take(mask_preds, cells, pad)

    scores, valid, order = matrix_nms(
        masks,
        labels,
        pair_scores,
        valid,
        sum_masks,
        nms_pre=cfg.nms_pre,
        kernel=cfg.kernel,
        sigma=cfg.sigma,
        filter_thr=cfg.filter_thr)
    scores, labels, mask_probs = gather_valid(valid, scores,
                                              cfg.max_per_img,
                                              labels[order],
                                              mask_preds[order])
    masks = upsample_masks(mask_probs, head.mask_stride, img_h,
                           img_w) > cfg.mask_thr
    return boxes_of_masks(masks), scores, labels, masks
