"""Post-processing steps with static shapes, for ONNX export.

The heads' ``predict_by_feat`` select candidates with boolean indexing and
return early when nothing is left; a traced graph would freeze those Python
decisions at the values of the example image. The functions here keep a
fixed number of candidates ``K`` and a ``valid`` mask instead, so one graph
serves every image, with no instance as well as with many; only the final
:func:`gather_valid` has a data-dependent size (ONNX ``NonZero``).

Every function runs eagerly too: the parity tests compare them, through the
exported graph, with the heads' own ``predict``. Shape shorthand: K
candidates, M cells or points, C classes, h x w mask resolution.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import nms as mmcv_nms
from torch import Tensor

from mmdet_pep.models.utils.misc import masks_to_boxes
from mmdet_pep.models.utils.ranking import topk_stable


def topk(x: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Top-k along the last dim, equal values by the lower index: ONNX
    ``TopK``'s rule in the graph, :func:`topk_stable` eagerly (the PEP
    head's rule)."""
    if torch.jit.is_tracing():
        return x.topk(k)
    return topk_stable(x, k)


def sort_desc(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Descending sort of a 1-D tensor, equal values by the lower index."""
    if torch.jit.is_tracing():
        return x.sort(descending=True)
    return x.sort(descending=True, stable=True)


def topk_candidates(scores: Tensor, k: int,
                    thr: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``k`` best entries of ``scores`` and which of them pass ``thr``.

    ``scores`` is padded with -1 to at least ``k`` entries, so that the
    graph's ``TopK`` never asks for more entries than an input has (the
    number of FCOS points shrinks with the image).

    Args:
        scores (Tensor): Shape (M,).
        k (int): Number of candidates K.
        thr (float): An entry is valid if its score is above ``thr``.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Scores (K,), indices (K,) and
        ``valid`` (K,) bool, best first. An index may point past ``scores``
        (a padded entry, never valid): gather with :func:`take`.
    """
    padded = torch.cat([scores, scores.new_full((k, ), -1.)])
    values, inds = topk(padded, k)
    return values, inds, values > thr


def take(items: Tensor, inds: Tensor, k: int) -> Tensor:
    """``items[inds]`` for indices of :func:`topk_candidates`: ``items``
    (M, ...) padded with ``k`` zero rows first."""
    pad = items.new_zeros((k, *items.shape[1:]))
    return torch.cat([items, pad])[inds]


def matrix_nms(masks: Tensor,
               labels: Tensor,
               scores: Tensor,
               valid: Tensor,
               areas: Tensor,
               nms_pre: int,
               kernel: str = 'gaussian',
               sigma: float = 2.0,
               filter_thr: float = -1) -> Tuple[Tensor, Tensor, Tensor]:
    """mmdet's :func:`mask_matrix_nms` on K padded candidates.

    The same decay as mmdet's: candidates sorted by score, each decayed by
    the more confident masks of its class. Invalid candidates sort last
    (score -1), get empty masks and area 1, so they decay nothing; of the
    valid ones the best ``nms_pre`` take part, as in mmdet.

    Args:
        masks (Tensor): Binary masks (K, h, w).
        labels (Tensor): (K,).
        scores (Tensor): (K,).
        valid (Tensor): (K,) bool.
        areas (Tensor): Mask areas (K,).
        nms_pre (int): Candidates that take part, best first.
        kernel (str): ``'gaussian'`` or ``'linear'``.
        sigma (float): The Gaussian kernel's sigma.
        filter_thr (float): Decayed scores below it become invalid.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Decayed scores (K,), ``valid`` (K,)
        and the order (K,) that sorted the inputs (all in that order).
    """
    scores = torch.where(valid, scores, scores.new_full(scores.shape, -1.))
    scores, order = sort_desc(scores)
    valid = valid[order]
    if nms_pre > 0:
        rank = torch.arange(valid.numel(), device=valid.device)
        valid = valid & (rank < nms_pre)
    masks = masks[order] & valid[:, None, None]
    areas = torch.where(valid, areas[order], areas.new_ones(areas.shape))
    labels = labels[order]
    flat = masks.flatten(1).float()
    inter = flat @ flat.t()
    iou = (inter / (areas[:, None] + areas[None] - inter)).triu(diagonal=1)
    same = (labels[:, None] == labels[None]).triu(diagonal=1)
    decay_iou = iou * same
    compensate = decay_iou.max(0).values[:, None]
    if kernel == 'gaussian':
        coef = (torch.exp(-sigma * decay_iou**2) /
                torch.exp(-sigma * compensate**2)).min(0).values
    elif kernel == 'linear':
        coef = ((1 - decay_iou) / (1 - compensate)).min(0).values
    else:
        raise NotImplementedError(
            f'{kernel} kernel is not supported in matrix nms')
    scores = scores * coef
    if filter_thr > 0:
        valid = valid & (scores >= filter_thr)
    return scores, valid, order


class _NonMaxSuppression(torch.autograd.Function):
    """Greedy NMS: mmcv's op eagerly, ONNX's standard ``NonMaxSuppression``
    in the graph (no custom-op library)."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_thr: float,
                max_num: int) -> Tensor:
        _, keep = mmcv_nms(boxes, scores, iou_thr)
        return keep[:max_num]

    @staticmethod
    def symbolic(g, boxes, scores, iou_thr, max_num):
        boxes = g.op('Unsqueeze', boxes,
                     g.op('Constant', value_t=torch.tensor([0])))
        scores = g.op('Unsqueeze', scores,
                      g.op('Constant', value_t=torch.tensor([0, 1])))
        selected = g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant', value_t=torch.tensor([max_num])),
            g.op('Constant', value_t=torch.tensor([iou_thr])))
        # (S, 3): batch, class, box index; the boxes are in score order.
        index = g.op('Gather', selected,
                     g.op('Constant', value_t=torch.tensor(2)), axis_i=1)
        return index


def batched_nms(boxes: Tensor, scores: Tensor, labels: Tensor, valid: Tensor,
                iou_thr: float, max_num: int) -> Tensor:
    """Class-aware greedy NMS of mmdet's :func:`batched_nms` over the valid
    of K candidates: boxes of different classes are shifted apart (mmdet's
    offset trick), invalid ones far beyond all others with score -1 < 0.

    Args:
        boxes (Tensor): (K, 4), x1 y1 x2 y2.
        scores (Tensor): (K,).
        labels (Tensor): (K,).
        valid (Tensor): (K,) bool.
        iou_thr (float): IoU above which the less confident box goes.
        max_num (int): Boxes kept at most.

    Returns:
        Tensor: ``valid`` (K,) bool: the candidates NMS keeps, of which at
        most ``max_num``.
    """
    offset = boxes.max() + 1
    cls = torch.where(valid, labels, labels.new_full(labels.shape, -1)) + 1
    shifted = boxes + (cls.to(boxes) * offset)[:, None]
    # Invalid candidates share one far class and never suppress valid ones;
    # a negative score puts them last.
    scores = torch.where(valid, scores, scores.new_full(scores.shape, -1.))
    keep = _NonMaxSuppression.apply(shifted, scores, float(iou_thr),
                                    int(max_num))
    # Fill value 1, not True: the tracer has no aten::index_fill overload
    # for a bool scalar (internal assert in alias analysis).
    kept = torch.zeros_like(valid).index_fill(0, keep, 1)
    return kept & valid


def member(inds: Tensor, num: int) -> Tensor:
    """(num,) bool: which of ``num`` entries ``inds`` names (no
    ``index_fill``: the tracer cannot export it with a bool value)."""
    pos = torch.arange(num, device=inds.device)
    return (pos[:, None] == inds[None]).any(1)


def greedy_leaders(linked: Tensor, valid: Tensor, num_iters: int) -> Tensor:
    """The leaders of PEP's greedy grouping (:meth:`PEPPurifier.group`) by
    ``num_iters`` matrix iterations instead of a loop over the candidates.

    In score order, a valid candidate leads a group unless an earlier
    leader is linked to it. That definition is a fixed point: starting from
    every valid candidate, ``leader = valid & ~any_j<i(leader_j & linked_ji)``
    is right for the first t candidates after t iterations and, once an
    iteration changes nothing, right for all (the fixed point is unique),
    as in Cluster-NMS. Suppression chains (a leader whose only suppressor
    was itself suppressed) are short, so few iterations reach it;
    :func:`groups_converged` says whether ``num_iters`` did.

    Args:
        linked (Tensor): (K, K) bool, candidates sorted best first.
        valid (Tensor): (K,) bool.
        num_iters (int): Iterations.

    Returns:
        Tensor: (K,) bool, the leaders.
    """
    pos = torch.arange(valid.shape[0], device=valid.device)
    suppress = linked & (pos[:, None] < pos[None])
    leader = valid
    for _ in range(num_iters):
        leader = valid & ~(suppress & leader[:, None]).any(0)
    return leader


def groups_converged(linked: Tensor, valid: Tensor, num_iters: int) -> bool:
    """Whether :func:`greedy_leaders` reached its fixed point (then its
    leaders are exactly the greedy loop's), eagerly."""
    leader = greedy_leaders(linked, valid, num_iters)
    pos = torch.arange(valid.shape[0], device=valid.device)
    suppress = linked & (pos[:, None] < pos[None])
    return bool((leader == (valid & ~(suppress & leader[:, None]).any(0))
                 ).all())


def greedy_groups(linked: Tensor, valid: Tensor, num_iters: int) -> Tensor:
    """PEP's greedy grouping (:meth:`PEPPurifier.group`): the leaders of
    :func:`greedy_leaders`, and each valid candidate joins the first leader
    (in score order) linked to it, which is the one that claims it in the
    loop.

    Args:
        linked (Tensor): (K, K) bool, candidates sorted best first.
        valid (Tensor): (K,) bool.
        num_iters (int): Iterations of :func:`greedy_leaders`.

    Returns:
        Tensor: ``owner`` (K,): the sorted position of each candidate's
        leader, -1 for invalid candidates.
    """
    pos = torch.arange(valid.shape[0], device=valid.device)
    # Not torch.eye: onnxruntime has no boolean EyeLike.
    linked = linked | (pos[:, None] == pos[None])
    leader = greedy_leaders(linked, valid, num_iters)
    claims = linked & leader[:, None] & (pos[:, None] <= pos[None])
    # ArgMax returns the first maximum: the earliest claiming leader.
    first = claims.to(torch.uint8).argmax(0)
    return torch.where(valid & claims.any(0), first, torch.full_like(pos, -1))


def upsample_masks(mask_probs: Tensor, stride: int, img_h, img_w) -> Tensor:
    """Mask probabilities (K, h, w) at ``stride`` -> (K, H, W) at the input
    size: bilinear to the padded input, then cropped, as SOLOv2 does. (One
    blank row rides along, so that K = 0 works eagerly too.)"""
    h, w = mask_probs.shape[-2:]
    padded = torch.cat([mask_probs, mask_probs.new_zeros((1, h, w))])
    up = F.interpolate(
        padded[None],
        size=(h * stride, w * stride),
        mode='bilinear',
        align_corners=False)[0]
    return up[:-1, :img_h, :img_w]


def boxes_of_masks(masks: Tensor) -> Tensor:
    """:func:`masks_to_boxes` of (N, H, W) masks for any N in the graph: its
    ``N == 0`` shortcut is a Python ``if`` that tracing would freeze (an
    example image without instances would give a graph that never returns
    boxes), so it sees one blank mask more."""
    h, w = masks.shape[-2:]
    blank = masks.new_zeros((1, h, w))
    return masks_to_boxes(torch.cat([masks, blank]))[:-1]


def gather_valid(valid: Tensor, scores: Tensor, max_num: int, *items):
    """The valid candidates, best first, at most ``max_num``: the step of
    the graph whose output size depends on the data.

    Args:
        valid (Tensor): (K,) bool; K may itself depend on the data.
        scores (Tensor): (K,).
        max_num (int): Kept at most.
        *items (Tensor): Per-candidate tensors, each (K, ...).

    Returns:
        tuple[Tensor]: ``scores`` and each item, (N, ...), N <= max_num.
    """
    ranked = torch.where(valid, scores, scores.new_full(scores.shape, -2.))
    # Padded, so that TopK never asks for more entries than there are.
    ranked = torch.cat([ranked, ranked.new_full((max_num, ), -2.)])
    ranked, order = topk(ranked, max_num)
    keep = order[(ranked > -2).nonzero()[:, 0]]
    return (scores[keep], *(item[keep] for item in items))
