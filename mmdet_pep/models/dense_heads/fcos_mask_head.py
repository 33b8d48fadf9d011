"""Base of the zoo's FCOS heads that also predict masks (EmbedMask, SipMask).

Shape shorthand: B images, P points over all pyramid levels, N detections
of an image, h x w a mask map of stride s.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import CondInstBboxHead, FCOSHead
from mmdet.structures.bbox import scale_boxes
from mmdet.utils import InstanceList, OptInstanceList
from ..utils import fcos_targets_single, levels_to_points


class FCOSMaskHead(FCOSHead):
    """mmdet's ``FCOSHead`` whose positives reach a mask loss with their GT
    indices and whose detections carry masks, as mmdet's RTMDet-Ins head
    returns boxes and masks together.

    A subclass's ``forward`` returns FCOS's ``cls_scores``, ``bbox_preds``
    and ``centernesses``, then one per-level output for each name of
    :attr:`LEVEL_OUTPUTS` (the detections carry them to the masks), then
    one map per image (B, C, H, W) from which the masks are made. It
    implements the mask loss in its ``loss_by_feat`` (with
    :meth:`fcos_losses`) and :meth:`_predict_masks`.

    The FCOS targets are mmdet's (box-centre sampling), batched by mmdet's
    CondInst code, which also gives every image's positives and their GT
    indices; :meth:`_point_mask` may restrict the positives further.

    ``test_cfg.nms_pre_rank`` says which candidates of a level reach NMS
    (:meth:`level_candidates`); the FCOS codes the zoo's methods come from
    differ here, so each head defaults to its official code's rule:

    - ``'cls'``: mmdet 3's ``FCOSHead``: the ``nms_pre`` best (location,
      class) pairs above ``score_thr`` by the class score alone;
    - ``'cls_ctr'``: maskrcnn-benchmark's FCOS (EmbedMask): the (location,
      class) pairs above ``score_thr``, the ``nms_pre`` best by class score
      x centerness;
    - ``'cls_ctr_location'``: mmdet 1.x's FCOS (SipMask): the ``nms_pre``
      locations of best max-over-classes class score x centerness, then
      their (location, class) pairs above ``score_thr``.

    All three threshold the class score alone and score the survivors cls
    x centerness; they differ only when a level has more than ``nms_pre``
    candidates.
    """

    NMS_PRE_RANKS = ('cls', 'cls_ctr', 'cls_ctr_location')
    TEST_CFG_DEFAULTS = dict(
        nms_pre=1000,
        nms_pre_rank='cls',
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
        mask_thr=0.5)
    LEVEL_OUTPUTS: Tuple[str, ...] = ()

    # FCOS targets batched over images and levels, with each image's
    # positive indices and GT indices; _get_targets_single is below.
    _batched_targets = CondInstBboxHead.get_targets

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.test_cfg = self.complete_test_cfg(self.test_cfg)

    def complete_test_cfg(self, cfg: Optional[dict]) -> ConfigDict:
        """``cfg`` over :attr:`TEST_CFG_DEFAULTS`, checked.

        Raises:
            ValueError: If ``mask_thr`` is not a probability in (0, 1) or
                ``nms_pre_rank`` is not one of :attr:`NMS_PRE_RANKS`.
        """
        cfg = ConfigDict({**self.TEST_CFG_DEFAULTS, **(cfg or {})})
        if not 0 < cfg.mask_thr < 1:
            raise ValueError('test_cfg.mask_thr is a probability in (0, 1), '
                             f'got {cfg.mask_thr}')
        if cfg.nms_pre_rank not in self.NMS_PRE_RANKS:
            raise ValueError(
                f'test_cfg.nms_pre_rank must be one of {self.NMS_PRE_RANKS}, '
                f'got {cfg.nms_pre_rank!r}')
        return cfg

    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: InstanceList
                    ) -> Tuple[List[Tensor], List[Tensor]]:
        """FCOS labels and box targets of each level, as
        :meth:`FCOSHead.loss_by_feat` takes them; the positives of each
        image and their GT indices are kept in ``self._assignment`` for the
        mask loss (:meth:`fcos_losses` hands them on)."""
        labels, bbox_targets, pos_inds, pos_gt_inds = self._batched_targets(
            points, batch_gt_instances)
        self._assignment = (pos_inds, pos_gt_inds)
        return labels, bbox_targets

    def _get_targets_single(self, gt_instances: InstanceData, points: Tensor,
                            regress_ranges: Tensor,
                            num_points_per_lvl: List[int]) -> tuple:
        """FCOS targets of one image with the positives and their GT
        indices (see :func:`~mmdet_pep.models.utils.fcos_targets_single`)."""
        point_mask = (
            self._point_mask(gt_instances, points)
            if len(gt_instances) else None)
        return fcos_targets_single(self, gt_instances, points,
                                   regress_ranges, num_points_per_lvl,
                                   point_mask)

    def _point_mask(self, gt_instances: InstanceData,
                    points: Tensor) -> Optional[Tensor]:
        """(P, G) which points may be positives of which GT; None: all."""
        return None

    def fcos_losses(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                    centernesses: List[Tensor],
                    batch_gt_instances: InstanceList,
                    batch_img_metas: List[dict],
                    batch_gt_instances_ignore: OptInstanceList) -> tuple:
        """mmdet's FCOS losses, unchanged, and what a mask loss needs.

        Returns:
            tuple: The loss dict, the points (P, 2), the box predictions as
            distances in pixels (B, P, 4), and each image's positive
            indices and their GT indices (lists of (num_pos,)).
        """
        losses = super().loss_by_feat(cls_scores, bbox_preds, centernesses,
                                      batch_gt_instances, batch_img_metas,
                                      batch_gt_instances_ignore)
        pos_inds_list, pos_gt_inds_list = self._assignment
        del self._assignment
        points = torch.cat(
            self.prior_generator.grid_priors(
                [featmap.shape[-2:] for featmap in cls_scores],
                dtype=bbox_preds[0].dtype,
                device=bbox_preds[0].device))
        if self.norm_on_bbox:
            bbox_preds = [b * s for b, s in zip(bbox_preds, self.strides)]
        return (losses, points, levels_to_points(bbox_preds), pos_inds_list,
                pos_gt_inds_list)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        centernesses: List[Tensor],
                        *maps: Sequence[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detections with masks of each image.

        Args:
            cls_scores, bbox_preds, centernesses (list[Tensor]): Per level,
                as FCOS gives them (distances in pixels at test time).
            *maps: The per-level outputs named by :attr:`LEVEL_OUTPUTS`
                (lists), then the image maps (B, C, H, W), as ``forward``
                returns them.
            batch_img_metas (list[dict]): ``img_shape``, ``ori_shape``,
                ``scale_factor`` of each image.
            cfg (ConfigDict, optional): Test config; ``self.test_cfg`` if
                None (missing keys from :attr:`TEST_CFG_DEFAULTS`).
            rescale (bool): Boxes and masks at ``ori_shape`` instead of
                ``img_shape``.
            with_nms (bool): Must be True: the masks belong to the
                detections that survive NMS.

        Returns:
            list[InstanceData]: ``scores`` (N,), ``labels`` (N,),
            ``bboxes`` (N, 4) and bool ``masks`` (N, h, w) of each image.
        """
        if not with_nms:
            raise ValueError(f'{type(self).__name__} predicts masks only '
                             'with NMS')
        cfg = self.test_cfg if cfg is None else self.complete_test_cfg(cfg)
        *level_outputs, image_maps = maps
        mlvl_points = self.prior_generator.grid_priors(
            [featmap.shape[-2:] for featmap in cls_scores],
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
        results_list = []
        for i, img_meta in enumerate(batch_img_metas):
            levels = [(*(out[i] for out in outs), points) for *outs, points
                      in zip(cls_scores, bbox_preds, centernesses,
                             *level_outputs, mlvl_points)]
            results = self._detect_single(levels, img_meta, cfg)
            results.masks = self._predict_masks(results, image_maps[i],
                                                img_meta, cfg, rescale)
            if rescale:
                results.bboxes = scale_boxes(
                    results.bboxes,
                    [1 / s for s in img_meta['scale_factor']])
            for name in self.LEVEL_OUTPUTS:
                delattr(results, name)
            results_list.append(results)
        return results_list

    @staticmethod
    def level_candidates(scores: Tensor, centerness: Tensor,
                         cfg: ConfigDict) -> Tuple[Tensor, Tensor, Tensor]:
        """The (location, class) pairs of one level that reach NMS, by
        ``cfg.nms_pre_rank`` (see the class docstring).

        Args:
            scores (Tensor): Sigmoid class scores (P, C).
            centerness (Tensor): Sigmoid centerness (P,).
            cfg (ConfigDict): ``score_thr``, ``nms_pre`` (<= 0 or None: no
                cut) and ``nms_pre_rank``.

        Returns:
            tuple[Tensor]: Class scores (K,), labels (K,) and locations
            (K,) of the candidates, best first by the ranking.
        """
        nms_pre = cfg.nms_pre if cfg.nms_pre and cfg.nms_pre > 0 else None
        if cfg.nms_pre_rank == 'cls_ctr_location':
            if nms_pre is not None and nms_pre < len(scores):
                ranked = (scores * centerness[:, None]).max(1).values
                locations = ranked.topk(nms_pre).indices
            else:
                locations = torch.arange(len(scores), device=scores.device)
            pairs = (scores[locations] > cfg.score_thr).nonzero()
            locs, labels = locations[pairs[:, 0]], pairs[:, 1]
            return scores[locs, labels], labels, locs
        pairs = (scores > cfg.score_thr).nonzero()
        locs, labels = pairs[:, 0], pairs[:, 1]
        cls = scores[locs, labels]
        ranked = cls * centerness[locs] if cfg.nms_pre_rank == 'cls_ctr' \
            else cls
        order = ranked.sort(descending=True).indices
        if nms_pre is not None:
            order = order[:nms_pre]
        return cls[order], labels[order], locs[order]

    def _detect_single(self, levels: List[Tuple[Tensor, ...]], img_meta: dict,
                       cfg: ConfigDict) -> InstanceData:
        """FCOS detections of one image at ``img_shape`` with their
        :attr:`LEVEL_OUTPUTS`: per level the candidates of
        :meth:`level_candidates`, then scores cls x centerness and
        class-wise NMS (mmdet's ``_bbox_post_process``).

        Args:
            levels (list[tuple[Tensor]]): Per level the image's
                ``cls_score`` (num_classes, h, w), ``bbox_pred`` (4, h, w),
                ``centerness`` (1, h, w), each of :attr:`LEVEL_OUTPUTS`
                (C, h, w) and the level's points (h w, 2).
        """
        mlvl = []
        for cls_score, bbox_pred, centerness, *outputs, points in levels:
            ctr = centerness.flatten().sigmoid()
            scores, labels, keep = self.level_candidates(
                cls_score.flatten(1).T.sigmoid(), ctr, cfg)
            filtered = dict(
                zip(self.LEVEL_OUTPUTS,
                    (o.flatten(1).T[keep] for o in outputs)),
                bbox_pred=bbox_pred.flatten(1).T[keep],
                points=points[keep])
            mlvl.append((scores, labels, ctr[keep], filtered))
        results = InstanceData()
        results.bboxes = self.bbox_coder.decode(
            torch.cat([f['points'] for *_, f in mlvl]),
            torch.cat([f['bbox_pred'] for *_, f in mlvl]),
            max_shape=img_meta['img_shape'])
        results.scores = torch.cat([m[0] for m in mlvl])
        results.labels = torch.cat([m[1] for m in mlvl])
        results.score_factors = torch.cat([m[2] for m in mlvl])
        for name in self.LEVEL_OUTPUTS:
            setattr(results, name, torch.cat([f[name] for *_, f in mlvl]))
        return self._bbox_post_process(
            results, cfg, rescale=False, with_nms=True, img_meta=img_meta)

    def _predict_masks(self, results: InstanceData, image_map: Tensor,
                       img_meta: dict, cfg: ConfigDict,
                       rescale: bool) -> Tensor:
        """Bool masks (N, h, w) at ``ori_shape`` (``rescale``) or
        ``img_shape`` of the detections (``bboxes`` at ``img_shape``)."""
        raise NotImplementedError

    @staticmethod
    def to_output_size(maps: Tensor, stride: int, img_meta: dict,
                       rescale: bool) -> Tensor:
        """Maps (N, h, w) of cells of ``stride`` px over the padded input,
        bilinearly upsampled to the input, cropped to ``img_shape`` and,
        with ``rescale``, resized to ``ori_shape``, as SOLOv2 does."""
        h, w = maps.shape[-2:]
        maps = F.interpolate(
            maps[None],
            size=(h * stride, w * stride),
            mode='bilinear',
            align_corners=False)[0]
        img_h, img_w = img_meta['img_shape'][:2]
        maps = maps[:, :img_h, :img_w]
        if rescale:
            maps = F.interpolate(
                maps[None],
                size=img_meta['ori_shape'][:2],
                mode='bilinear',
                align_corners=False)[0]
        return maps
