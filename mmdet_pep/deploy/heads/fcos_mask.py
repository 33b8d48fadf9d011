"""EmbedMask's and SipMask's post-processing
(:meth:`FCOSMaskHead.predict_by_feat`) with static shapes.

Both heads detect like FCOS (:meth:`FCOSMaskHead._detect_single`) and then
make the masks of the detections (their ``_predict_masks``); the FCOS part
is shared here. What differs from the eager head is only how candidates are
kept:

1. Per level, the candidates of ``test_cfg.nms_pre_rank``
   (:meth:`FCOSMaskHead.level_candidates`) by
   :func:`..ops.topk_candidates` on the level's (padded) ranking scores,
   each with a ``valid`` flag (class score above ``score_thr``) instead of
   being cut out; K = ``nms_pre`` x levels candidates (x C for
   ``'cls_ctr_location'``: every class of the kept points) with their
   class, centerness, distances, point and the head's :attr:`LEVEL_OUTPUTS` (EmbedMask's ``embeds`` and ``margins``
   (K, D), SipMask's ``coeffs`` (K, 4 x ``num_bases``)).
2. Boxes (K, 4) from the head's bbox coder, clipped to the input (H, W)
   like mmdet's ``distance2bbox`` with ``max_shape``; scores cls x
   centerness (no square root, mmdet's ``_bbox_post_process``); the
   ``min_bbox_size`` filter if ``test_cfg`` has one; class-aware greedy NMS
   (:func:`..ops.batched_nms`), at most ``max_per_img`` kept.
   SipMask with ``test_cfg.nms.type='fast_nms'`` instead ranks the points
   of each level by their best cls x centerness (no threshold, as the
   head), and YOLACT's fast NMS runs on the (C, ``top_k``) best per class
   with a ``valid`` flag (:func:`_fast_nms`).
3. The masks of the valid ones of the M = ``max_per_img`` best survivors
   (a data-dependent number, plus one invalid copy), by
   the head's own ``_predict_masks`` (EmbedMask: embedding log-probs in the
   padded box; SipMask: crop-split assembly of the bases), bool at the
   input size; then :func:`..ops.gather_valid` keeps the valid ones
   (N <= M), best first, as the eager NMS order.

No cap is introduced: every bound of the graph (``nms_pre`` per level,
``max_per_img`` after NMS, ``top_k`` per class for fast NMS) is one that
the eager head applies too, so the graph gives the same instances.
``nms_pre`` and ``max_per_img`` must be positive ints
(:class:`..model.NotExportableError` otherwise): the graph needs these
bounds, and the eager head has none without them. ``test_cfg.nms.type``
must be ``'nms'`` (mmcv's greedy NMS; ``class_agnostic`` is honoured) or,
for SipMask, ``'fast_nms'``.

Boxes are clipped here rather than by ``bbox_coder.decode(...,
max_shape=...)``: while exporting, mmdet's ``distance2bbox`` takes a
branch that imports ``mmdet.core.export``, which mmdet 3 no longer has.

Shape shorthand: K candidates, M mask candidates, C classes, H x W the
input image.
"""
from typing import Dict, List, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures.bbox import bbox_overlaps, get_box_tensor, get_box_wh
from ..model import NotExportableError
from ..ops import batched_nms, gather_valid, take, topk_candidates

# topk_candidates pads with -1: above this, a real (point) entry.
_REAL = -1.


def _check_cfg(head, cfg: ConfigDict) -> None:
    """Raise :class:`NotExportableError` for test settings the graph does
    not reproduce."""
    name = type(head).__name__
    if not (isinstance(cfg.nms_pre, int) and cfg.nms_pre > 0):
        raise NotExportableError(
            f'{name}: test_cfg.nms_pre must be a positive int for export, '
            f'got {cfg.nms_pre!r}')
    if not (isinstance(cfg.max_per_img, int) and cfg.max_per_img > 0):
        raise NotExportableError(
            f'{name}: test_cfg.max_per_img must be a positive int for '
            f'export, got {cfg.max_per_img!r}')
    if cfg.nms.get('type', 'nms') not in ('nms', 'fast_nms'):
        raise NotExportableError(
            f"{name}: test_cfg.nms.type {cfg.nms.get('type')!r} does not "
            "export; 'nms' (or SipMask's 'fast_nms') does")


def _points(head, cls_scores: List[Tensor]) -> List[Tensor]:
    """The points (h w, 2) of each level, as ``predict_by_feat`` makes
    them."""
    return head.prior_generator.grid_priors(
        [featmap.shape[-2:] for featmap in cls_scores],
        dtype=torch.float32,
        device=cls_scores[0].device)


def _decode(head, points: Tensor, bbox_pred: Tensor, img_h,
            img_w) -> Tensor:
    """Boxes (K, 4) from points (K, 2) and distances (K, 4), clipped to
    the input as ``bbox_coder.decode(..., max_shape=(img_h, img_w))``."""
    boxes = get_box_tensor(head.bbox_coder.decode(points, bbox_pred))
    if getattr(head.bbox_coder, 'clip_border', True):
        size = torch.stack([
            torch.as_tensor(s, device=boxes.device)
            for s in (img_w, img_h, img_w, img_h)
        ]).to(boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0), size)
    return boxes


def _level_view(out: Tensor) -> Tensor:
    """(1, c, h, w) -> image 0's (h w, c), as ``_detect_single``."""
    return out[0].flatten(1).t()


def _level_candidates(scores: Tensor, ctr: Tensor, cfg: ConfigDict
                      ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """:meth:`FCOSMaskHead.level_candidates` with static shapes: class
    scores, points (indices for :func:`..ops.take`), labels and ``valid``
    of K candidates (``nms_pre``, or ``nms_pre`` x C for
    ``'cls_ctr_location'``), best first by ``cfg.nms_pre_rank``.

    Args:
        scores (Tensor): Sigmoid class scores (P_l, C).
        ctr (Tensor): Sigmoid centerness (P_l,).
    """
    k, thr = cfg.nms_pre, cfg.score_thr
    num_cls = scores.shape[1]
    rank = cfg.nms_pre_rank
    if rank == 'cls_ctr_location':
        best = (scores * ctr[:, None]).max(1).values
        _, pts, real = topk_candidates(best, k, _REAL)
        cls = take(scores, pts, k)  # (k, C)
        valid = real[:, None] & (cls > thr)
        labels = torch.arange(num_cls, device=scores.device)
        return (cls.flatten(), pts[:, None].expand(-1, num_cls).flatten(),
                labels[None].expand(k, -1).flatten(), valid.flatten())
    if rank == 'cls_ctr':
        # Below the class-score threshold: -0.5, under every real product
        # (>= 0) and above topk_candidates' padding (-1).
        ranked = torch.where(scores > thr, scores * ctr[:, None],
                             scores.new_full(scores.shape, -0.5))
        _, inds, valid = topk_candidates(ranked.flatten(), k, -0.5)
        top = take(scores.flatten(), inds, k)
    else:
        top, inds, valid = topk_candidates(scores.flatten(), k, thr)
    return (top, torch.div(inds, num_cls, rounding_mode='floor'),
            inds % num_cls, valid)


def _detect(head, cfg: ConfigDict, outs: tuple, img_h,
            img_w) -> Dict[str, Tensor]:
    """:meth:`FCOSMaskHead._detect_single` on image 0 with a ``valid``
    flag: per-level candidates (:func:`_level_candidates`), cls x
    centerness, class-aware NMS.

    Returns:
        dict: ``bboxes`` (K, 4), ``scores`` (K,), ``labels`` (K,),
        ``valid`` (K,) bool (the NMS survivors, at most ``max_per_img``)
        and each of :attr:`LEVEL_OUTPUTS` (K, c).
    """
    cls_scores, bbox_preds, centernesses, *level_outputs = outs
    k = cfg.nms_pre
    cands: Dict[str, list] = {}
    for lvl, points in enumerate(_points(head, cls_scores)):
        scores = _level_view(cls_scores[lvl]).sigmoid()  # (P_l, C)
        ctr = centernesses[lvl][0].flatten().sigmoid()  # (P_l,)
        top, pts, labels, valid = _level_candidates(scores, ctr, cfg)
        level = dict(
            scores=top,
            labels=labels,
            valid=valid,
            score_factors=take(ctr, pts, k),
            bbox_pred=take(_level_view(bbox_preds[lvl]), pts, k),
            points=take(points, pts, k))
        for name, out in zip(head.LEVEL_OUTPUTS, level_outputs):
            level[name] = take(_level_view(out[lvl]), pts, k)
        for key, value in level.items():
            cands.setdefault(key, []).append(value)
    cands = {key: torch.cat(values) for key, values in cands.items()}
    bboxes = _decode(head, cands.pop('points'), cands.pop('bbox_pred'),
                     img_h, img_w)
    # _bbox_post_process: cls x centerness, min_bbox_size, batched NMS.
    scores = cands['scores'] * cands.pop('score_factors')
    valid = cands['valid']
    if cfg.get('min_bbox_size', -1) >= 0:
        w, h = get_box_wh(bboxes)
        valid = valid & (w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)
    labels = cands['labels']
    nms_labels = (
        torch.zeros_like(labels) if cfg.nms.get('class_agnostic', False)
        else labels)
    valid = batched_nms(bboxes, scores, nms_labels, valid,
                        cfg.nms.iou_threshold, cfg.max_per_img)
    return dict(cands, bboxes=bboxes, scores=scores, valid=valid)


def _fast_nms(boxes: Tensor, scores: Tensor, score_thr: float,
              iou_thr: float, top_k: int) -> Tuple[Tensor, ...]:
    """mmdet's :func:`fast_nms` (YOLACT's) without cutting: each class's
    ``top_k`` best candidates, valid where no better one of its class
    overlaps it by more than ``iou_thr`` and its score passes
    ``score_thr``.

    Args:
        boxes (Tensor): (K, 4).
        scores (Tensor): (K, C); -1 for candidates that take no part.
        score_thr, iou_thr (float): As mmdet's.
        top_k (int): Candidates per class.

    Returns:
        tuple[Tensor]: Flat over (C, top_k): ``scores``, ``valid`` bool,
        ``labels`` and the candidate index into K, each (C top_k,).
    """
    num_cls, num = scores.shape[1], scores.shape[0]
    scores, idx = scores.t().sort(1, descending=True)
    top = min(top_k, num)
    idx, scores = idx[:, :top], scores[:, :top]
    boxes = boxes[idx.reshape(-1)].reshape(num_cls, top, 4)
    iou = bbox_overlaps(boxes, boxes)
    iou_max = iou.triu(diagonal=1).max(dim=1).values
    keep = (iou_max <= iou_thr) & (scores > score_thr)
    labels = torch.arange(num_cls, device=boxes.device)[:, None].expand(
        num_cls, top)
    return (scores.reshape(-1), keep.reshape(-1), labels.reshape(-1),
            idx.reshape(-1))


def _detect_fast(head, cfg: ConfigDict, outs: tuple, img_h,
                 img_w) -> Dict[str, Tensor]:
    """:meth:`SipMaskHead._detect_single` with ``nms.type='fast_nms'`` on
    image 0, static: per level the ``nms_pre`` points of best cls x
    centerness, then :func:`_fast_nms` and the ``max_per_img`` best.

    Returns:
        dict: ``bboxes``, ``scores``, ``labels``, ``valid`` and ``coeffs``
        of M = min(``max_per_img``, C ``top_k``) candidates.
    """
    cls_scores, bbox_preds, centernesses, coeffs = outs
    k = cfg.nms_pre
    scores, bboxes, coeff_list = [], [], []
    for lvl, points in enumerate(_points(head, cls_scores)):
        ctr = centernesses[lvl][0].flatten().sigmoid()
        cls = _level_view(cls_scores[lvl]).sigmoid() * ctr[:, None]
        _, pts, real = topk_candidates(cls.max(1).values, k, _REAL)
        cls = take(cls, pts, k)
        scores.append(torch.where(real[:, None], cls, cls.new_full(
            cls.shape, -1.)))
        bboxes.append(
            _decode(head, take(points, pts, k),
                    take(_level_view(bbox_preds[lvl]), pts, k), img_h,
                    img_w))
        coeff_list.append(take(_level_view(coeffs[lvl]), pts, k))
    bboxes, coeffs = torch.cat(bboxes), torch.cat(coeff_list)
    scores, valid, labels, idx = _fast_nms(bboxes, torch.cat(scores),
                                           cfg.score_thr,
                                           cfg.nms.iou_threshold,
                                           cfg.nms.get('top_k', 200))
    return dict(
        bboxes=bboxes[idx],
        scores=scores,
        labels=labels,
        valid=valid,
        coeffs=coeffs[idx])


def _best(cands: Dict[str, Tensor], num: int) -> Dict[str, Tensor]:
    """The ``num`` best candidates by score, valid ones first; a static
    stand-in for the eager head's cut to the NMS survivors."""
    scores, valid = cands['scores'], cands['valid']
    ranked = torch.where(valid, scores, scores.new_full(scores.shape, -2.))
    order = ranked.topk(min(num, ranked.shape[0])).indices
    return {key: value[order] for key, value in cands.items()}


def _postprocess(detector,
                 feats: Tuple[Tensor],
                 img_h,
                 img_w,
                 fast_nms: bool = False
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The instances of image 0 of an :class:`FCOSMaskHead` detector;
    ``fast_nms``: the head may ask for YOLACT's fast NMS (SipMask)."""
    head = detector.bbox_head
    cfg = head.test_cfg
    _check_cfg(head, cfg)
    *outs, image_maps = head(feats)
    if cfg.nms.get('type', 'nms') == 'fast_nms':
        if not fast_nms:
            raise NotExportableError(
                f"{type(head).__name__}: test_cfg.nms.type 'fast_nms' is "
                "SipMask's")
        cands = _detect_fast(head, cfg, outs, img_h, img_w)
    else:
        cands = _detect(head, cfg, outs, img_h, img_w)
    cands = _best(cands, cfg.max_per_img)
    # Masks of the valid survivors only (a data-dependent number, as the
    # eager head's) and one invalid copy, so that nothing is ever empty.
    valid = cands['valid']
    keep = torch.cat([valid.nonzero()[:, 0], valid.new_zeros(1).long()])
    cands = {key: value[keep] for key, value in cands.items()}
    last = torch.ones_like(cands['valid']).clone()
    last[:-1] = False
    cands['valid'] = cands['valid'] & ~last
    results = InstanceData(
        bboxes=cands['bboxes'],
        **{name: cands[name]
           for name in head.LEVEL_OUTPUTS})
    img_meta = dict(img_shape=(img_h, img_w), ori_shape=(img_h, img_w))
    masks = head._predict_masks(results, image_maps[0], img_meta, cfg,
                                False)
    scores, boxes, labels, masks = gather_valid(cands['valid'],
                                                cands['scores'],
                                                cfg.max_per_img,
                                                cands['bboxes'],
                                                cands['labels'], masks)
    return boxes, scores, labels, masks


def embedmask_postprocess(detector, feats: Tuple[Tensor], img_h,
                          img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """EmbedMask's instances of image 0 from the neck's features.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
        ``masks`` (N, H, W) bool.
    """
    return _postprocess(detector, feats, img_h, img_w)


def sipmask_postprocess(detector, feats: Tuple[Tensor], img_h,
                        img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """SipMask's instances of image 0 from the neck's features, with
    class-wise or fast NMS as ``test_cfg.nms.type`` says.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
        ``masks`` (N, H, W) bool.
    """
    return _postprocess(detector, feats, img_h, img_w, fast_nms=True)
