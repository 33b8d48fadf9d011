"""CondInst's post-processing (:meth:`CondInstBboxHead.predict_by_feat`,
then :meth:`CondInstMaskHead.predict_by_feat`) with static shapes.

The same stages as mmdet's, on the heads' own code: the box head's
``forward``, prior generator and box coder; the mask head's mask feature
branch and ``forward_single`` (relative coordinates,
``parse_dynamic_params``, ``dynamic_conv_forward``, the aligned upsampling
to ``mask_out_stride``), and its ``_predict_by_feat_single`` (sigmoid,
upsampling to the input, crop, ``mask_thr``). Only
``parse_dynamic_params``' result is reshaped, to the same sizes as Python
numbers (:class:`_StaticParams`). What differs is how candidates are
kept::

    per level l     scores (H_l W_l, C) sigmoid, boxes, centerness, params
    candidates      (L K,)  per level the K = nms_pre best (point, class)
                            pairs, valid where the score is above
                            score_thr (mmdet's filter_scores_and_topk);
                            without nms_pre, every pair of every point
                            but the least valid one (mmdet's [:-1])
    boxes           (L K, 4) decoded, clipped to the input; scores x
                            centerness; valid where w, h > min_bbox_size
    NMS             (L K,)  class-aware greedy NMS (:func:`..ops.batched_nms`),
                            at most max_per_img kept
    mask candidates (D,)    the D = max_per_img best kept ones, whose masks
                            the mask head computes, (D, H, W) at the input
                            size (a grouped dynamic conv needs a fixed
                            number of instances)
    instances       (N,)    :func:`..ops.gather_valid`, N <= max_per_img

Nothing is capped beyond what ``test_cfg`` already caps: mmdet keeps at
most ``nms_pre`` pairs per level and ``max_per_img`` instances after NMS
too, so the graph gives the same instances.
"""
from typing import Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..ops import batched_nms, gather_valid, take, topk_candidates


def _level_candidates(bbox_head, cfg, cls_score: Tensor, bbox_pred: Tensor,
                      centerness: Tensor, param_pred: Tensor, points: Tensor,
                      strides: Tensor) -> dict:
    """One level's candidates, as ``filter_scores_and_topk`` selects them
    in :meth:`CondInstBboxHead._predict_by_feat_single`, each with a
    ``valid`` flag.

    Args:
        cls_score (Tensor): (C, H, W) logits of image 0.
        bbox_pred (Tensor): (4, H, W) distances.
        centerness (Tensor): (1, H, W) logits.
        param_pred (Tensor): (P, H, W) dynamic-conv parameters.
        points (Tensor): (H W, 2) the level's points.
        strides (Tensor): (H W,) their stride.

    Returns:
        dict: ``scores``, ``labels``, ``valid``, ``bbox_pred``,
        ``centerness``, ``param_pred``, ``points``, ``strides``, each (K,
        ...).
    """
    num_cls = bbox_head.num_classes
    cls_score = cls_score.permute(1, 2,
                                  0).reshape(-1, bbox_head.cls_out_channels)
    if bbox_head.use_sigmoid_cls:
        scores = cls_score.sigmoid()
    else:
        scores = cls_score.softmax(-1)[:, :-1]
    per_point = dict(
        bbox_pred=bbox_pred.permute(1, 2, 0).reshape(-1, 4),
        centerness=centerness.permute(1, 2, 0).reshape(-1).sigmoid(),
        param_pred=param_pred.permute(1, 2, 0).reshape(
            -1, bbox_head.num_params),
        points=points,
        strides=strides)
    score_thr = cfg.get('score_thr', 0)
    nms_pre = cfg.get('nms_pre', -1)
    if nms_pre > 0:
        scores, inds, valid = topk_candidates(scores.flatten(), nms_pre,
                                              score_thr)
        pts = torch.div(inds, num_cls, rounding_mode='floor')
        out = {key: take(value, pts, nms_pre)
               for key, value in per_point.items()}
    else:
        inds = torch.arange(scores.numel(), device=scores.device)
        scores = scores.flatten()
        valid = scores > score_thr
        # filter_scores_and_topk keeps scores[:min(nms_pre, n)], i.e.
        # drops the least valid pair of the level when nms_pre < 0.
        least = torch.where(valid, scores,
                            scores.new_full(scores.shape, 2.)).argmin()
        valid = valid & (inds != least)
        out = {key: value.repeat_interleave(num_cls, 0)
               for key, value in per_point.items()}
    out.update(scores=scores, labels=inds % num_cls, valid=valid)
    return out


class _StaticParams:
    """The mask head, except that the dynamic conv's weights have a shape
    the graph knows: ``parse_dynamic_params`` reshapes with the traced
    instance count, which leaves the Conv's kernel shape unknown to the
    exporter; here the head's own result is reshaped to its sizes as
    Python numbers (static: D instances, the head's channels)."""

    def __init__(self, head) -> None:
        self._head = head

    def __getattr__(self, name: str):
        return getattr(self._head, name)

    def parse_dynamic_params(self, params: Tensor) -> tuple:
        weights, biases = self._head.parse_dynamic_params(params)
        weights = [w.reshape([int(size) for size in w.shape]) for w in weights]
        biases = [b.reshape([int(size) for size in b.shape]) for b in biases]
        return weights, biases


def _clip(boxes: Tensor, img_h, img_w) -> Tensor:
    """``boxes`` (K, 4) clipped to the input, as ``distance2bbox`` clips
    them to ``max_shape`` (its ONNX branch imports a module that mmdet 3
    no longer has, so the coder decodes unclipped here)."""
    # ``img_w`` and ``img_h`` stay traced as clamp's bounds (torch.as_tensor
    # would freeze them).
    xs = boxes[:, 0::2].clamp(min=0, max=img_w)
    ys = boxes[:, 1::2].clamp(min=0, max=img_h)
    return torch.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], dim=1)


def condinst_postprocess(detector, feats: Tuple[Tensor], img_h,
                         img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """CondInst's instances of image 0 from the neck's features.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
        ``masks`` (N, H, W) bool.
    """
    bbox_head, mask_head = detector.bbox_head, detector.mask_head
    cfg = bbox_head.test_cfg
    cls_scores, bbox_preds, centernesses, param_preds = bbox_head(feats)
    featmap_sizes = [cls.shape[-2:] for cls in cls_scores]
    priors = bbox_head.prior_generator.grid_priors(
        featmap_sizes,
        dtype=bbox_preds[0].dtype,
        device=bbox_preds[0].device,
        with_stride=True)
    levels = [
        _level_candidates(bbox_head, cfg, cls[0], bbox[0], ctr[0], param[0],
                          prior[:, :2], prior[:, 2])
        for cls, bbox, ctr, param, prior in zip(
            cls_scores, bbox_preds, centernesses, param_preds, priors)
    ]
    cands = {key: torch.cat([lvl[key] for lvl in levels]) for key in levels[0]}

    # _predict_by_feat_single's decode and _bbox_post_process.
    boxes = bbox_head.bbox_coder.decode(cands['points'], cands['bbox_pred'])
    if getattr(bbox_head.bbox_coder, 'clip_border', True):
        boxes = _clip(boxes, img_h, img_w)
    scores = cands['scores'] * cands['centerness']
    valid = cands['valid']
    if cfg.get('min_bbox_size', -1) >= 0:
        wh = boxes[:, 2:] - boxes[:, :2]
        valid = valid & (wh > cfg.min_bbox_size).all(1)
    valid = batched_nms(boxes, scores, cands['labels'], valid,
                        cfg.nms.iou_threshold, cfg.max_per_img)

    # The mask head on the max_per_img best kept candidates.
    num_masks = cfg.max_per_img
    _, inds, kept = topk_candidates(
        torch.where(valid, scores, scores.new_full(scores.shape, -1.)),
        num_masks, -1.)
    picked = {
        key: take(value, inds, num_masks)
        for key, value in dict(
            boxes=boxes,
            scores=scores,
            labels=cands['labels'],
            param_preds=cands['param_pred'],
            points=cands['points'],
            strides=cands['strides'].clamp(min=1)).items()
    }
    info = InstanceData(
        param_preds=picked['param_preds'],
        points=picked['points'],
        strides=picked['strides'])
    # The mask head's forward, for image 0.
    mask_feat = mask_head.mask_feature_head(feats)[0]
    mask_logits = type(mask_head).forward_single(
        _StaticParams(mask_head), mask_feat, info)[0]
    # Upsampled before the gathering: the mask head's replicate padding
    # refuses an empty (1, 0, h, w) input.
    img_meta = dict(
        img_shape=(img_h, img_w),
        ori_shape=(img_h, img_w),
        scale_factor=(1., 1.))
    masks = mask_head._predict_by_feat_single(
        mask_logits, picked['boxes'], img_meta, rescale=False)
    scores, boxes, labels, masks = gather_valid(kept, picked['scores'],
                                                cfg.max_per_img,
                                                picked['boxes'],
                                                picked['labels'], masks)
    return boxes, scores, labels, masks
