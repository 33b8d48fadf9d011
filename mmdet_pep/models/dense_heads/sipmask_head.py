"""SipMask head: FCOS boxes, spatial coefficients and mask bases.

Shape shorthand: B images, P points over all pyramid levels, G GT instances
of an image, N boxes (positives in training, detections in testing), K mask
bases (32), h x w a level's map, H x W the basis map (stride
``basis_stride``, 2 by default).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.ops import DeformConv2d
from mmengine.config import ConfigDict
from mmengine.model import normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.layers import fast_nms
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from ..layers.deform_conv import deform_conv2d
from ..utils import gt_masks_on_grid, levels_to_points, zero_loss
from .fcos_mask_head import FCOSMaskHead

# The official crop kernel splits a box of width w at (w + SPLIT_EPS) / 2
# (likewise the height), so that its last column/row stays in the second
# half.
SPLIT_EPS = 0.1
NUM_QUADRANTS = 4


def box_quadrants(boxes: Tensor, size: Tuple[int, int]) -> Tuple[Tensor,
                                                                  Tensor]:
    """Which cells of an (H, W) map each box covers, and in which quadrant.

    The semantics of the official CUDA ``CropSplit`` kernel: cell (i, j)
    (row, column; integer indices, not centres) is inside box (x1, y1, x2,
    y2), given in cells, when ``x1 <= j < x2`` and ``y1 <= i < y2``; its
    quadrant is ``2 * qy + qx`` with ``qx = floor((j - x1) / ((x2 - x1 +
    0.1) / 2))`` (0 left, 1 right) and likewise ``qy`` (0 top, 1 bottom),
    the order of the coefficient sets (top-left, top-right, bottom-left,
    bottom-right).

    Args:
        boxes (Tensor): (N, 4) boxes in cells of the map.
        size (tuple[int, int]): (H, W).

    Returns:
        tuple[Tensor, Tensor]: ``quadrant`` (N, H, W) long in [0, 3]
        (meaningless outside the box) and ``inside`` (N, H, W) bool.
    """
    h, w = size
    xs = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
    ys = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
    x1, y1, x2, y2 = (boxes[:, k, None] for k in range(4))
    in_x = (xs >= x1) & (xs < x2)  # (N, W)
    in_y = (ys >= y1) & (ys < y2)  # (N, H)
    qx = ((xs - x1) / ((x2 - x1 + SPLIT_EPS) / 2)).floor().clamp(0, 1)
    qy = ((ys - y1) / ((y2 - y1 + SPLIT_EPS) / 2)).floor().clamp(0, 1)
    quadrant = (2 * qy[:, :, None] + qx[:, None, :]).long()
    return quadrant, in_y[:, :, None] & in_x[:, None, :]


def crop_split_logits(bases: Tensor, coeffs: Tensor,
                      boxes: Tensor) -> Tuple[Tensor, Tensor]:
    """Spatial-preserving mask assembly of SipMask, as logits.

    For each box the k-th quadrant takes the logits ``coeffs[:, k] . bases``
    of its own coefficient set; the four are put side by side in one map.
    Selecting before the sigmoid gives the official ``sum_k crop_k(sigmoid
    (bases . coef_k))`` inside the box (each cell lies in one quadrant) and
    lets the loss use BCE-with-logits.

    Computed quadrant by quadrant, so that at most two (N, H, W) maps exist
    at a time (the official code keeps four).

    Args:
        bases (Tensor): (K, H, W).
        coeffs (Tensor): (N, 4, K).
        boxes (Tensor): (N, 4) boxes in cells of the basis map.

    Returns:
        tuple[Tensor, Tensor]: ``logits`` (N, H, W), whose values outside
        the box are meaningless, and ``inside`` (N, H, W) bool.
    """
    quadrant, inside = box_quadrants(boxes, bases.shape[-2:])
    logits = None
    for k in range(NUM_QUADRANTS):
        logits_k = torch.einsum('nk,khw->nhw', coeffs[:, k], bases)
        logits = logits_k if logits is None else torch.where(
            quadrant == k, logits_k, logits)
    return logits, inside


class SipFeatureAlign(nn.Module):
    """SipMask's feature alignment: a 3x3 deformable conv whose offsets are
    a 1x1 conv (no bias, zero at start) of the box prediction, then GN (if
    the head has a norm) and ReLU.

    mmdet's ``fovea_head.FeatureAlign`` is the same idea without the norm,
    with random offset init and with gradients into the box branch; the
    official SipMask detaches the box prediction, starts from zero offsets
    (a plain 3x3 conv) and adds GN.

    The deformable conv is mmcv's ``DeformConv2d`` (its parameters, and its
    kernel on CUDA); on the CPU, :func:`~mmdet_pep.models.layers.
    deform_conv2d` computes the same with ``grid_sample`` about 7x faster
    (``impl='auto'``).

    Args:
        in_channels (int): Input and output channels.
        deform_groups (int): Offset groups of the deformable conv.
        norm_cfg (dict, optional): Norm after the conv.
        impl (str): ``'auto'`` (mmcv's kernel on CUDA, the PyTorch one
            elsewhere), ``'mmcv'`` or ``'torch'``.
    """

    IMPLS = ('auto', 'mmcv', 'torch')

    def __init__(self,
                 in_channels: int,
                 deform_groups: int = 4,
                 norm_cfg: Optional[ConfigType] = None,
                 impl: str = 'auto') -> None:
        super().__init__()
        if impl not in self.IMPLS:
            raise ValueError(f'impl must be one of {self.IMPLS}, got '
                             f'{impl!r}')
        self.impl = impl
        self.conv_offset = nn.Conv2d(4, deform_groups * 2 * 9, 1, bias=False)
        self.conv_adaption = DeformConv2d(
            in_channels,
            in_channels,
            kernel_size=3,
            padding=1,
            deform_groups=deform_groups)
        self.norm = (
            build_norm_layer(norm_cfg, in_channels)[1]
            if norm_cfg is not None else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        nn.init.zeros_(self.conv_offset.weight)
        normal_init(self.conv_adaption, std=0.01)

    def forward(self, x: Tensor, box_pred: Tensor) -> Tensor:
        """Align ``x`` (B, C, h, w) to ``box_pred`` (B, 4, h, w), which is
        detached."""
        offset = self.conv_offset(box_pred.detach())
        conv = self.conv_adaption
        if self.impl == 'torch' or (self.impl == 'auto'
                                    and x.device.type != 'cuda'):
            x = deform_conv2d(x, offset, conv.weight, None, conv.stride,
                              conv.padding, conv.dilation,
                              conv.deform_groups)
        else:
            x = conv(x, offset)
        return self.relu(self.norm(x))


@MODELS.register_module()
class SipMaskHead(FCOSMaskHead):
    """SipMask head (Cao et al., "SipMask: Spatial Information Preservation
    for Fast Image and Video Instance Segmentation", ECCV 2020,
    https://arxiv.org/abs/2007.14772).

    FCOS finds the objects; each location also predicts four sets of
    ``num_bases`` coefficients, one per quadrant of its box, from a feature
    aligned to its box by a deformable conv; a basis branch on the box
    tower of P3-P5 gives ``num_bases`` non-negative maps at stride 2. An
    object's mask is, in each quadrant of its box, the sigmoid of that
    quadrant's coefficients times the bases; zero outside the box.

    The official mmdet-1.x code is followed where the paper is silent:

    - FCOS with centre sampling (radius 1.5 around the box centre), IoU
      loss, centerness on the box tower, distances normalised by the
      stride. The classification tower has ``stacked_convs - 1`` convs and
      feeds the alignment; classification and coefficients are 3x3 convs on
      the aligned feature (coefficients initialised with std 0.001).
    - Distances: mmdet's FCOS clamps them at 0 (``norm_on_bbox``); the
      official head leaves them linear (its maskrcnn-benchmark twin uses a
      ReLU too). The alignment sees the clamped distances in strides.
    - Bases: the box-tower features of the first three levels, bilinearly
      resized to the first's size and concatenated, a 1x1 conv to
      ``basis_channels`` (512) + ReLU, a 3x3 conv to ``num_bases`` + ReLU,
      bilinear x4 to ``basis_stride``.
    - Mask loss on every FCOS positive, with its predicted box (detached,
      in basis cells; boxes of area <= 1 cell dropped): BCE of the
      assembled mask against the GT mask (resized bilinearly to the basis
      map and ``> 0.5``) inside the box, summed over the box and divided by
      its width and height (in cells) and the image's number of such
      positives; each positive weighted by the sigmoid score of its GT
      class times the IoU of its box with the GT box, renormalised to mean
      1 over the image (mask alignment weighting); summed over positives,
      averaged over images. The "x0.5 if > 1" of the maskrcnn-benchmark
      variant is not used.
    - Inference: the official candidates (``nms_pre_rank``
      ``'cls_ctr_location'``: per level the ``nms_pre`` locations of best
      max-over-classes cls x centerness, then their class scores above
      ``score_thr``); scores cls x centerness; ``test_cfg.nms.type``
      ``'nms'`` for the class-wise NMS of the accurate configs or
      ``'fast_nms'`` (YOLACT's, ``top_k``) for the real-time ones; masks of the kept boxes
      assembled on the basis map with the boxes at input scale, upsampled
      to the input, cropped to ``img_shape``, resized to ``ori_shape``
      (``rescale``) and thresholded at ``mask_thr`` (0.4).

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of the pyramid levels.
        num_bases (int): K, mask bases (32).
        basis_channels (int): Hidden channels of the basis branch.
        basis_stride (int): Stride of the bases; a divisor of the first
            level's stride.
        deform_groups (int): Offset groups of the alignment conv.
        deform_impl (str): Kernel of the alignment conv (see
            :class:`SipFeatureAlign`): ``'auto'``, ``'mmcv'`` or
            ``'torch'``; the same outputs.
        strides (Sequence[int]): Strides of the levels, P3-P7's.
        center_sampling, norm_on_bbox, centerness_on_reg: FCOS switches,
            the official values by default.
        loss_bbox (dict): FCOS box loss; the official IoU loss.
        **kwargs: Other :class:`FCOSHead` arguments.

    Label convention: foreground ``[0, num_classes - 1]``, background
    ``num_classes``.
    """

    TEST_CFG_DEFAULTS = dict(
        nms_pre=1000,
        nms_pre_rank='cls_ctr_location',
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
        mask_thr=0.4)

    LEVEL_OUTPUTS = ('coeffs', )

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_bases: int = 32,
                 basis_channels: int = 512,
                 basis_stride: int = 2,
                 deform_groups: int = 4,
                 deform_impl: str = 'auto',
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 center_sampling: bool = True,
                 norm_on_bbox: bool = True,
                 centerness_on_reg: bool = True,
                 loss_bbox: ConfigType = dict(type='IoULoss',
                                              loss_weight=1.0),
                 **kwargs) -> None:
        if num_bases < 1 or basis_channels < 1:
            raise ValueError('num_bases and basis_channels must be >= 1, got '
                             f'{num_bases} and {basis_channels}')
        if len(strides) < 3:
            raise ValueError('the bases fuse the first three levels: need '
                             f'at least 3 strides, got {strides}')
        self.num_bases = num_bases
        self.basis_channels = basis_channels
        self.basis_stride = basis_stride
        self.deform_groups = deform_groups
        self.deform_impl = deform_impl
        super().__init__(
            num_classes,
            in_channels,
            strides=strides,
            center_sampling=center_sampling,
            norm_on_bbox=norm_on_bbox,
            centerness_on_reg=centerness_on_reg,
            loss_bbox=loss_bbox,
            **kwargs)
        if self.strides[0] % basis_stride:
            raise ValueError(f'basis_stride {basis_stride} must divide the '
                             f'first level stride {self.strides[0]}')

    def complete_test_cfg(self, cfg: Optional[dict]) -> ConfigDict:
        """The defaults completed and checked, and ``nms.type`` one of
        ``'nms'`` and ``'fast_nms'``."""
        cfg = super().complete_test_cfg(cfg)
        if cfg.nms.get('type') not in ('nms', 'fast_nms'):
            raise ValueError("test_cfg.nms.type must be 'nms' or "
                             f"'fast_nms', got {cfg.nms.get('type')!r}")
        return cfg

    def _init_cls_convs(self) -> None:
        """``stacked_convs - 1`` convs: the alignment conv is the last."""
        self.cls_convs = nn.ModuleList([
            ConvModule(
                self.in_channels if i == 0 else self.feat_channels,
                self.feat_channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.conv_bias) for i in range(self.stacked_convs - 1)
        ])

    def _init_layers(self) -> None:
        """FCOS's layers, the alignment, the coefficient conv and the basis
        branch."""
        super()._init_layers()
        align_channels = (
            self.feat_channels if self.stacked_convs > 1 else
            self.in_channels)
        self.feat_align = SipFeatureAlign(align_channels, self.deform_groups,
                                          self.norm_cfg, self.deform_impl)
        # The classifier and the coefficients read the aligned feature.
        self.conv_cls = nn.Conv2d(
            align_channels, self.cls_out_channels, 3, padding=1)
        self.conv_coeff = nn.Conv2d(
            align_channels, NUM_QUADRANTS * self.num_bases, 3, padding=1)
        self.basis_fuse = nn.Conv2d(3 * self.feat_channels,
                                    self.basis_channels, 1)
        self.basis_out = nn.Conv2d(
            self.basis_channels, self.num_bases, 3, padding=1)

    def init_weights(self) -> None:
        """FCOS's initialisation (normal std 0.01, classifier bias for a
        prior of 0.01; mmengine then runs the alignment's own
        :meth:`SipFeatureAlign.init_weights`), and the official std 0.001
        of the coefficients."""
        super().init_weights()
        normal_init(self.conv_coeff, std=0.001)

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], ...]:
        """Forward all levels and the basis branch.

        Args:
            x (tuple[Tensor]): Pyramid levels, each (B, C, h, w).

        Returns:
            tuple: Per level lists ``cls_scores`` (B, num_classes, h, w),
            ``bbox_preds`` (B, 4, h, w), ``centernesses`` (B, 1, h, w) and
            ``coeff_preds`` (B, 4 K, h, w); and ``bases`` (B, K, H, W).
        """
        cls_scores, bbox_preds, centernesses, coeff_preds, reg_feats = \
            multi_apply(self.forward_single, x, self.scales, self.strides)
        return (cls_scores, bbox_preds, centernesses, coeff_preds,
                self.forward_bases(reg_feats[:3]))

    def forward_single(self, x: Tensor, scale, stride: int) -> tuple:
        """FCOS outputs of one level with the aligned classification, its
        coefficients (B, 4 K, h, w) and box-tower feature."""
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        bbox_pred = scale(self.conv_reg(reg_feat)).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            # The alignment sees distances in strides, as in training.
            aligned = self.feat_align(cls_feat, bbox_pred.to(cls_feat.dtype))
            if not self.training:
                bbox_pred = bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
            aligned = self.feat_align(cls_feat,
                                      (bbox_pred / stride).to(cls_feat.dtype))
        centerness = self.conv_centerness(
            reg_feat if self.centerness_on_reg else cls_feat)
        return (self.conv_cls(aligned), bbox_pred, centerness,
                self.conv_coeff(aligned), reg_feat)

    def forward_bases(self, reg_feats: List[Tensor]) -> Tensor:
        """Mask bases (B, K, H, W) at ``basis_stride`` from the box-tower
        features of the first three levels."""
        size = reg_feats[0].shape[-2:]
        fused = torch.cat([reg_feats[0]] + [
            F.interpolate(
                feat, size=size, mode='bilinear', align_corners=False)
            for feat in reg_feats[1:]
        ], 1)
        bases = F.relu(self.basis_out(F.relu(self.basis_fuse(fused))))
        factor = self.strides[0] // self.basis_stride
        if factor > 1:
            bases = F.interpolate(
                bases,
                scale_factor=factor,
                mode='bilinear',
                align_corners=False)
        return bases

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
        """FCOS's losses (mmdet's, unchanged) and the mask loss.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``,
            ``loss_centerness`` and ``loss_mask``.
        """
        losses, points, bbox_preds, pos_inds_list, pos_gt_inds_list = \
            self.fcos_losses(cls_scores, bbox_preds, centernesses,
                             batch_gt_instances, batch_img_metas,
                             batch_gt_instances_ignore)
        losses['loss_mask'] = self.loss_mask_by_feat(
            levels_to_points(cls_scores), bbox_preds,
            levels_to_points(coeff_preds), bases, points, pos_inds_list,
            pos_gt_inds_list, batch_gt_instances)
        return losses

    def usable_positives(self, points: Tensor, bbox_preds: Tensor,
                         pos_inds: Tensor, gt_inds: Tensor) -> tuple:
        """The positives of one image whose predicted box (detached, in
        pixels) covers more than one basis cell, as the official loss keeps
        them.

        Returns:
            tuple: ``pos_inds``, ``gt_inds`` and ``boxes`` (num_kept, 4).
        """
        boxes = self.bbox_coder.decode(points[pos_inds],
                                       bbox_preds[pos_inds].detach())
        keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > \
            self.basis_stride**2
        return pos_inds[keep], gt_inds[keep], boxes[keep]

    def loss_mask_by_feat(self, cls_scores: Tensor, bbox_preds: Tensor,
                          coeff_preds: Tensor, bases: Tensor, points: Tensor,
                          pos_inds_list: List[Tensor],
                          pos_gt_inds_list: List[Tensor],
                          batch_gt_instances: InstanceList) -> Tensor:
        """The weighted, box-normalised BCE of every positive's mask.

        Args:
            cls_scores (Tensor): (B, P, num_classes) logits.
            bbox_preds (Tensor): (B, P, 4) distances in pixels.
            coeff_preds (Tensor): (B, P, 4 K).
            bases (Tensor): (B, K, H, W).
            points (Tensor): (P, 2).
            pos_inds_list, pos_gt_inds_list (list[Tensor]): Positives of
                each image and their GT indices, each (num_pos,).
            batch_gt_instances (list[InstanceData]): GT of each image.

        Returns:
            Tensor: The loss; a zero connected to every parameter when no
            image has a usable positive.
        """
        losses = []
        for i, gt_instances in enumerate(batch_gt_instances):
            if 'masks' not in gt_instances:
                raise ValueError('SipMaskHead needs gt_instances.masks '
                                 '(LoadAnnotations(with_mask=True))')
            pos_inds, gt_inds, boxes = self.usable_positives(
                points, bbox_preds[i], pos_inds_list[i], pos_gt_inds_list[i])
            if len(pos_inds) == 0:
                continue
            cells = boxes / self.basis_stride
            labels = gt_instances.labels[gt_inds]
            with torch.no_grad():
                weights = cls_scores[i, pos_inds, labels].sigmoid().float() * \
                    bbox_overlaps(
                        boxes, gt_instances.bboxes[gt_inds], is_aligned=True)
                weights = weights / (weights.sum() + 1e-4) * len(weights)
            logits, inside = crop_split_logits(
                bases[i],
                coeff_preds[i, pos_inds].reshape(-1, NUM_QUADRANTS,
                                                 self.num_bases), cells)
            targets = (gt_masks_on_grid(gt_instances.masks, gt_inds,
                                        bases.shape[-2:], self.basis_stride)
                       > 0.5).float()
            bce = F.binary_cross_entropy_with_logits(
                logits.float(), targets, weight=inside.float(),
                reduction='none').sum((1, 2))
            widths = cells[:, 2] - cells[:, 0]
            heights = cells[:, 3] - cells[:, 1]
            losses.append((bce / (widths * heights * len(bce)) *
                           weights).sum())
        if not losses:
            return zero_loss(self, bases)
        # Images without a usable positive count as 0, as officially.
        return torch.stack(losses).sum() / len(batch_gt_instances)

    def _detect_single(self, levels: List[Tuple[Tensor, ...]], img_meta: dict,
                       cfg: ConfigDict) -> InstanceData:
        """FCOS detections of one image at ``img_shape`` with their
        coefficients: class-wise NMS (:class:`FCOSMaskHead`'s) or, with
        ``test_cfg.nms.type='fast_nms'``, YOLACT's fast NMS over the
        ``nms_pre`` best locations of each level by cls x centerness, as
        the official real-time configs."""
        if cfg.nms.type != 'fast_nms':
            return super()._detect_single(levels, img_meta, cfg)
        scores, bboxes, coeffs = [], [], []
        for cls_score, bbox_pred, centerness, coeff, points in levels:
            ctr = centerness.flatten().sigmoid()
            cls = cls_score.flatten(1).T.sigmoid() * ctr[:, None]
            keep = cls.max(1).values.topk(min(cfg.nms_pre,
                                              len(cls))).indices
            scores.append(cls[keep])
            bboxes.append(
                self.bbox_coder.decode(
                    points[keep],
                    bbox_pred.flatten(1).T[keep],
                    max_shape=img_meta['img_shape']))
            coeffs.append(coeff.flatten(1).T[keep])
        scores = torch.cat(scores)
        # mmdet's fast NMS wants a background column last.
        dets, labels, coeffs = fast_nms(
            torch.cat(bboxes),
            torch.cat([scores, scores.new_zeros(len(scores), 1)], 1),
            torch.cat(coeffs), cfg.score_thr, cfg.nms.iou_threshold,
            cfg.nms.get('top_k', 200), cfg.max_per_img)
        results = InstanceData()
        results.bboxes, results.scores = dets[:, :4], dets[:, 4]
        results.labels, results.coeffs = labels, coeffs
        return results

    def _predict_masks(self, results: InstanceData, bases: Tensor,
                       img_meta: dict, cfg: ConfigDict,
                       rescale: bool) -> Tensor:
        """Bool masks (N, h, w) at ``ori_shape`` (``rescale``) or
        ``img_shape`` of detections with ``bboxes`` at ``img_shape``."""
        out_h, out_w = img_meta['ori_shape' if rescale else 'img_shape'][:2]
        if len(results) == 0:
            return bases.new_zeros((0, out_h, out_w), dtype=torch.bool)
        logits, inside = crop_split_logits(
            bases,
            results.coeffs.reshape(-1, NUM_QUADRANTS, self.num_bases),
            results.bboxes / self.basis_stride)
        probs = logits.sigmoid() * inside
        probs = self.to_output_size(probs, self.basis_stride, img_meta,
                                    rescale)
        return probs > cfg.mask_thr
