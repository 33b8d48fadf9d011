"""PEP's post-processing (:meth:`PEPHead._predict_by_feat_single`) with
static shapes.

The same stages as the head's ``predict``, on the same building blocks of
the head (``forward``, ``_dynamic_masks``, ``_maskness``, the excavator's
``excavate_maps`` / ``mine``, the purifier's similarity and
``merge_weights``); what differs is only how candidates are kept. The
originals are the ``nms_pre`` best (cell, class) pairs, each with a
``valid`` flag (score above ``score_thr``) instead of being cut out; the
excavator mines ``max_keys`` peaks around each of the ``max_originals``
first originals, valid where the peak passes ``key_thr`` and the mined
class score ``score_thr``. So the graph carries K = ``nms_pre`` +
``max_originals`` x ``max_keys`` nodes (the eager head never has more).

The purifier's greedy grouping, a Python loop over the nodes in the head,
is :data:`GROUP_ITERS` = 16 matrix iterations towards its fixed point
(:func:`..ops.greedy_groups`, as Cluster-NMS does for NMS), not K
unrolled steps: each step of a loop is a handful of graph nodes with their
own overhead, 320 steps cost about as much as the rest of the head. The
iterations give the loop's groups exactly once they converge, which takes
as many as the longest suppression chain (node c kept because its only
suppressor b was itself suppressed by a); :func:`cap_reached` says whether
an image needs more, and ``tools/deploy/evaluate_onnx.py`` counts such
images of a split (``images_capped``).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet_pep.models.utils.misc import coord_grid, local_peaks
from ..ops import (boxes_of_masks, gather_valid, greedy_groups,
                   groups_converged, matrix_nms, member, sort_desc, take, topk, topk_candidates,
                   upsample_masks)


#: Iterations of the purifier's greedy grouping in the graph
#: (:func:`..ops.greedy_leaders`): exact once they reach the fixed point,
#: which needs as many as the longest suppression chain among the nodes.
GROUP_ITERS = 16


def _flatten(head, mlvl_desc_preds, mlvl_cls_preds):
    """Point-NMSed class probabilities (M, C), descriptors (M, D) and the
    stride of each cell (M,) of image 0, as ``predict_by_feat`` makes
    them."""
    scores, descs, strides = [], [], []
    for lvl, (cls, desc) in enumerate(zip(mlvl_cls_preds, mlvl_desc_preds)):
        prob = cls[0].float().softmax(dim=0)[:-1]
        hmax = F.max_pool2d(prob[None], 2, stride=1, padding=1)[0, :, :-1,
                                                                 :-1]
        prob = prob * (hmax == prob)
        scores.append(prob.flatten(1).t())
        descs.append(desc[0].flatten(1).t())
        strides.append(prob.new_full((prob.shape[-1]**2, ),
                                     head.strides[lvl]))
    return torch.cat(scores), torch.cat(descs), torch.cat(strides)


def _mine(head, cfg: ConfigDict, exc_feat: Tensor, nodes: dict) -> dict:
    """:meth:`PEPExcavator.predict` around the first ``max_originals``
    originals, every peak kept with a ``valid`` flag."""
    exc = head.excavator
    num_ori = min(cfg.excavate.max_originals, nodes['desc'].shape[0])
    desc, xy = nodes['desc'][:num_ori], nodes['xy'][:num_ori]
    h, w = exc_feat.shape[-2:]
    heat = exc.excavate_maps(exc_feat, desc, xy).sigmoid()
    peaks = local_peaks(heat).flatten(1)
    max_keys = cfg.excavate.max_keys
    # Padded as in topk_candidates: a small map has fewer pixels than keys.
    peaks = torch.cat([peaks, peaks.new_full((num_ori, max_keys), -1.)], 1)
    val, pos = topk(peaks, max_keys)
    valid = (val > cfg.excavate.key_thr) & nodes['valid'][:num_ori, None]
    grid = coord_grid(h, w, exc_feat.device).flatten(1).t()
    key_xy = take(grid, pos.flatten(), num_ori * max_keys)
    ori = torch.arange(num_ori, device=desc.device)[:, None].expand_as(pos)
    ori = ori.flatten()
    mined, cls_logits = exc.mine(desc[ori], xy[ori], key_xy)
    scores = cls_logits.softmax(dim=1)[:, :-1] * val.flatten()[:, None]
    scores, labels = scores.max(dim=1)
    return dict(
        scores=scores,
        labels=labels,
        desc=mined,
        xy=key_xy,
        stride=scores.new_full(scores.shape, min(head.strides)),
        scale=head.level_scales[:1].expand(scores.shape[0]),
        valid=valid.flatten() & (scores > cfg.score_thr))


def _linked(head, cfg: ConfigDict, nodes: dict) -> Tensor:
    """The purifier's links between the nodes, (K, K) bool, as
    :meth:`PEPHead._group` and :meth:`PEPPurifier.group` make them."""
    linked = head.purifier(nodes['desc'], nodes['xy']).sigmoid() > \
        cfg.purify.group_thr
    if not cfg.purify.class_agnostic:
        linked = linked & (nodes['labels'][:, None] == nodes['labels'][None])
    if cfg.purify.mask_iou_thr > 0:
        flat = nodes['masks'].flatten(1).float()
        inter = flat @ flat.t()
        union = nodes['areas'][:, None] + nodes['areas'][None] - inter
        linked = linked & (inter > cfg.purify.mask_iou_thr * union)
    return linked


def _purify(head, cfg: ConfigDict, nodes: dict) -> dict:
    """:meth:`PEPHead._group` and :meth:`PEPHead._purify` on the valid
    nodes: greedy groups in score order, merged masks, the leaders'
    labels."""
    order = sort_desc(
        torch.where(nodes['valid'], nodes['scores'],
                    nodes['scores'].new_full(nodes['scores'].shape, -1.)))[1]
    nodes = {key: value[order] for key, value in nodes.items()}
    valid = nodes['valid']
    owner = greedy_groups(_linked(head, cfg, nodes), valid, GROUP_ITERS)
    pos = torch.arange(owner.shape[0], device=owner.device)
    leading = valid & (owner == pos)
    if not cfg.purify.matrix_nms:
        rank = leading.long().cumsum(0) - 1
        leading = leading & (rank < cfg.max_per_img)
    members = (owner[None, :] == pos[:, None]) & leading[:, None]
    weights = head.purifier.merge_weights(pos, members, nodes['scores'])
    mask_probs = torch.einsum('gn,nhw->ghw', weights,
                              nodes['mask_logits']).sigmoid()
    masks = mask_probs > cfg.mask_thr
    areas = masks.sum((1, 2)).float()
    scores = nodes['scores']
    if cfg.purify.rescore:
        scores = nodes['cls_scores'] * torch.nan_to_num(
            head._maskness(mask_probs, masks, areas))
    return dict(
        scores=scores,
        labels=nodes['labels'],
        mask_probs=mask_probs,
        masks=masks,
        areas=areas,
        valid=leading & (areas > 0))


def _compact(nodes: dict) -> dict:
    """The valid nodes, in their order, and after them one invalid copy of
    the first node (any node would do): the masks, the purifier and Matrix NMS then work on the N + 1
    nodes the eager head has (N + 1 >= 1, so no operator of the graph sees
    an empty tensor), not on all K. On 800 x 1333 inputs the masks of K =
    320 nodes are a quarter of the graph's time."""
    valid = nodes['valid']
    keep = torch.cat([valid.nonzero()[:, 0], valid.new_zeros(1).long()])
    blank = valid.new_ones(keep.shape).clone()
    blank[:-1] = False
    out = {key: value[keep] for key, value in nodes.items()}
    out['valid'] = out['valid'] & ~blank
    # A unit of 1 keeps the copy's relative coordinates finite even when
    # the first node is padding.
    out['scale'] = torch.where(blank, torch.ones_like(out['scale']),
                               out['scale'])
    return out


def _nodes(head, feats: Tuple[Tensor]) -> dict:
    """The K nodes of image 0 with their masks, as
    :meth:`PEPHead._node_masks` leaves them (with a ``valid`` flag)."""
    cfg = head.test_cfg
    desc_preds, cls_preds, mask_feats, exc_feats = head(feats)
    cls_scores, descs, strides = _flatten(head, desc_preds, cls_preds)
    num_cls = cls_scores.shape[1]
    cls_scores = torch.nan_to_num(cls_scores)
    k = min(cfg.nms_pre, cls_scores.numel())
    scores, inds, valid = topk_candidates(cls_scores.flatten(), k,
                                          cfg.score_thr)
    cells = torch.div(inds, num_cls, rounding_mode='floor')
    cell_xy = head._cell_xy().to(mask_feats.device)
    nodes = dict(
        scores=scores,
        labels=inds % num_cls,
        desc=take(descs, cells, k),
        xy=take(cell_xy, cells, k),
        stride=take(strides, cells, k),
        scale=take(head.level_scales[head.cell_index[0]], cells, k),
        valid=valid)
    if head.excavator is not None:
        mined = _mine(head, cfg, exc_feats[0], nodes)
        nodes = {key: torch.cat([nodes[key], mined[key]]) for key in nodes}
    if cfg.max_descriptors is not None:
        ranked = torch.where(nodes['valid'], nodes['scores'],
                             nodes['scores'].new_full(
                                 nodes['scores'].shape, -1.))
        top = topk(ranked, min(cfg.max_descriptors, ranked.shape[0]))[1]
        nodes['valid'] = nodes['valid'] & member(top, ranked.shape[0])

    nodes = _compact(nodes)
    # As _node_masks.
    mask_logits = head._dynamic_masks(nodes['desc'], nodes['xy'],
                                      nodes['scale'], mask_feats[0])
    mask_probs = mask_logits.sigmoid()
    masks = mask_probs > cfg.mask_thr
    areas = masks.sum((1, 2)).float()
    min_area = nodes['stride'] if cfg.min_area == 'stride' else cfg.min_area
    valid = nodes['valid'] & (areas > min_area) & torch.isfinite(
        nodes['scores'])
    cls_scores = nodes['scores']
    scores = torch.nan_to_num(cls_scores *
                              head._maskness(mask_probs, masks, areas))
    return dict(
        scores=scores,
        cls_scores=cls_scores,
        labels=nodes['labels'],
        desc=nodes['desc'],
        xy=nodes['xy'],
        mask_logits=mask_logits,
        mask_probs=mask_probs,
        masks=masks,
        areas=areas,
        valid=valid)


def pep_postprocess(detector, feats: Tuple[Tensor], img_h,
                    img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """PEP's instances of image 0 from the neck's features.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
        ``masks`` (N, H, W) bool.
    """
    head = detector.mask_head
    cfg = head.test_cfg
    nodes = _nodes(head, feats)
    if head.purifier is not None:
        nodes = _purify(head, cfg, nodes)
    if head.purifier is None or cfg.purify.matrix_nms:
        scores, valid, order = matrix_nms(
            nodes['masks'],
            nodes['labels'],
            nodes['scores'],
            nodes['valid'],
            nodes['areas'],
            nms_pre=cfg.nms_pre,
            kernel=cfg.kernel,
            sigma=cfg.sigma,
            filter_thr=cfg.filter_thr)
        nodes = dict(
            scores=scores,
            valid=valid,
            labels=nodes['labels'][order],
            mask_probs=nodes['mask_probs'][order])
    scores, labels, mask_probs = gather_valid(nodes['valid'],
                                              nodes['scores'],
                                              cfg.max_per_img,
                                              nodes['labels'],
                                              nodes['mask_probs'])
    masks = upsample_masks(mask_probs, head.mask_stride, img_h,
                           img_w) > cfg.mask_thr
    return boxes_of_masks(masks), scores, labels, masks


def cap_reached(detector, feats: Tuple[Tensor], img_h, img_w) -> bool:
    """Whether :data:`GROUP_ITERS` iterations leave the purifier's grouping
    of this image short of the greedy loop's (eagerly, for checking a data
    set): ``False`` means the graph's groups are the eager head's."""
    head = detector.mask_head
    if head.purifier is None:
        return False
    nodes, cfg = _nodes(head, feats), head.test_cfg
    order = sort_desc(
        torch.where(nodes['valid'], nodes['scores'],
                    nodes['scores'].new_full(nodes['scores'].shape, -1.)))[1]
    nodes = {key: value[order] for key, value in nodes.items()}
    return not groups_converged(_linked(head, cfg, nodes), nodes['valid'],
                                GROUP_ITERS)
