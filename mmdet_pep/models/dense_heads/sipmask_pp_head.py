"""SipMask++ head: SipMask with a mask-IoU rescoring branch.

Shape shorthand: N boxes, H x W the basis map, C classes.
"""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import kaiming_init, normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from ..utils import gt_masks_on_grid, levels_to_points, zero_loss
from .sipmask_head import NUM_QUADRANTS, SipMaskHead, crop_split_logits

# The official IoU targets count only instances of at least 10 x 10 cells
# of the basis map and IoUs in (0.1, 1].
MIN_GT_CELLS = 100
MIN_IOU = 0.1


@MODELS.register_module()
class SipMaskPPHead(SipMaskHead):
    """SipMask++'s head (the official code's ``rescoring_flag``): SipMask's
    head plus a small network that predicts, from an assembled mask, its
    IoU with the object, so that a detection's mask score is predicted IoU
    x box score (``pred_instances.mask_scores``, which mmdet's
    ``CocoMetric`` ranks masks by).

    The branch, as officially: the mask probabilities on the basis map (the
    whole map, zero outside the box; detached, so no gradient reaches the
    mask branch) through ``len(mask_iou_channels)`` 3x3 convs of stride 2
    without padding (ReLU, Kaiming init), a 1x1 conv to C (std 0.001),
    ReLU and a global max pool; the GT class's value is the IoU. Its loss
    is the squared error against the IoU of the mask (> ``mask_thr``) with
    the GT mask on the basis map, over positives whose IoU is in (0.1, 1]
    and whose GT covers at least 100 cells, summed, x10 and divided by
    their number (+ 0.1). Maps smaller than the convs need (127 cells for
    six) are zero-padded at the bottom and right, where the official code
    would fail.

    The IoU branch reassembles the positives' masks instead of sharing them
    with :meth:`SipMaskHead.loss_mask_by_feat`: SipMask's own loss is
    unchanged, at the price of a second assembly (detached, no backward).

    Args:
        mask_iou_channels (Sequence[int]): Output channels of the strided
            convs.
        loss_mask_iou (dict): The IoU loss, summed; its weight is the
            official 10.
        **kwargs: :class:`SipMaskHead` arguments.
    """

    def __init__(self,
                 *args,
                 mask_iou_channels: Sequence[int] = (16, 16, 16, 32, 64, 128),
                 loss_mask_iou: ConfigType = dict(
                     type='MSELoss', loss_weight=10.0, reduction='sum'),
                 **kwargs) -> None:
        if not mask_iou_channels:
            raise ValueError('mask_iou_channels needs at least one conv')
        self.mask_iou_channels = tuple(mask_iou_channels)
        super().__init__(*args, **kwargs)
        self.loss_mask_iou = MODELS.build(loss_mask_iou)

    def _init_layers(self) -> None:
        super()._init_layers()
        channels = (1, ) + self.mask_iou_channels
        self.mask_iou_convs = nn.Sequential(*[
            ConvModule(channels[i], channels[i + 1], 3, stride=2, bias=True)
            for i in range(len(self.mask_iou_channels))
        ])
        self.conv_mask_iou = nn.Conv2d(channels[-1], self.num_classes, 1)

    def init_weights(self) -> None:
        super().init_weights()
        for module in self.mask_iou_convs:
            kaiming_init(module.conv)
        normal_init(self.conv_mask_iou, std=0.001)

    def predict_mask_iou(self, probs: Tensor, labels: Tensor) -> Tensor:
        """Predicted IoU (N,) of masks ``probs`` (N, H, W) of class
        ``labels`` (N,)."""
        min_size = 2**(len(self.mask_iou_convs) + 1) - 1
        h, w = probs.shape[-2:]
        x = F.pad(probs[:, None],
                  (0, max(min_size - w, 0), 0, max(min_size - h, 0)))
        x = F.relu(self.conv_mask_iou(self.mask_iou_convs(x)))
        x = x.flatten(2).max(-1).values  # global max pool, (N, C)
        return x[torch.arange(len(labels), device=x.device), labels]

    def fcos_losses(self, *args) -> tuple:
        """:meth:`SipMaskHead.fcos_losses`, keeping the positives for the
        IoU branch."""
        out = super().fcos_losses(*args)
        self._positives = out[1:]
        return out

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        coeff_preds: List[Tensor],
        bases: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """SipMask's losses and ``loss_mask_iou``."""
        losses = super().loss_by_feat(cls_scores, bbox_preds, centernesses,
                                      coeff_preds, bases, batch_gt_instances,
                                      batch_img_metas,
                                      batch_gt_instances_ignore)
        points, box_preds, pos_inds_list, pos_gt_inds_list = self._positives
        del self._positives
        losses['loss_mask_iou'] = self.loss_mask_iou_by_feat(
            box_preds, levels_to_points(coeff_preds), bases, points,
            pos_inds_list, pos_gt_inds_list, batch_gt_instances)
        return losses

    def loss_mask_iou_by_feat(self, bbox_preds: Tensor, coeff_preds: Tensor,
                              bases: Tensor, points: Tensor,
                              pos_inds_list: List[Tensor],
                              pos_gt_inds_list: List[Tensor],
                              batch_gt_instances: InstanceList) -> Tensor:
        """The IoU branch's loss over every positive of the batch (the
        positives and boxes of :meth:`SipMaskHead.loss_mask_by_feat`)."""
        total, count = bases.new_zeros(()), 0.
        for i, gt_instances in enumerate(batch_gt_instances):
            pos_inds, gt_inds, boxes = self.usable_positives(
                points, bbox_preds[i], pos_inds_list[i], pos_gt_inds_list[i])
            if len(pos_inds) == 0:
                continue
            cells = boxes / self.basis_stride
            with torch.no_grad():
                logits, inside = crop_split_logits(
                    bases[i],
                    coeff_preds[i, pos_inds].reshape(-1, NUM_QUADRANTS,
                                                     self.num_bases), cells)
                probs = logits.sigmoid() * inside
                masks = probs > self.test_cfg.mask_thr
                targets = gt_masks_on_grid(gt_instances.masks, gt_inds,
                                           bases.shape[-2:],
                                           self.basis_stride) > 0.5
                inter = (masks & targets).flatten(1).sum(1).float()
                gt_area = targets.flatten(1).sum(1).float()
                ious = inter / (masks.flatten(1).sum(1) + gt_area - inter +
                                0.1)
                weights = ((ious > MIN_IOU) & (ious <= 1) &
                           (gt_area >= MIN_GT_CELLS)).float()
            pred = self.predict_mask_iou(probs.float(),
                                         gt_instances.labels[gt_inds])
            total = total + self.loss_mask_iou(pred, ious, weights)
            count += float(weights.sum())
        if count == 0:
            return zero_loss(self, bases)
        return total / (count + 0.1)

    def _predict_masks(self, results: InstanceData, bases: Tensor,
                       img_meta: dict, cfg, rescale: bool) -> Tensor:
        """SipMask's masks, and ``results.mask_scores``: the predicted IoU
        of each mask x its box score."""
        masks = super()._predict_masks(results, bases, img_meta, cfg, rescale)
        if len(results) == 0:
            results.mask_scores = results.scores.new_zeros((0, ))
            return masks
        logits, inside = crop_split_logits(
            bases,
            results.coeffs.reshape(-1, NUM_QUADRANTS, self.num_bases),
            results.bboxes / self.basis_stride)
        results.mask_scores = self.predict_mask_iou(
            logits.sigmoid() * inside, results.labels) * results.scores
        return masks
