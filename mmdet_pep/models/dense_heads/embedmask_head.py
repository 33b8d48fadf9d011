"""EmbedMask head: FCOS boxes plus pixel and proposal embeddings.

Shape shorthand: B images, P points over all pyramid levels, G GT instances
of an image, N proposals (positives in training, detections in testing),
D embedding dimensions, h x w a level's map, H x W the pixel-embedding map
(stride ``mask_stride``, 4 by default).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, Scale
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import FCOSHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from ..utils import gt_masks_on_grid, levels_to_points, zero_loss
from .fcos_mask_head import FCOSMaskHead

# Log-probability written outside a detection's padded box before the map is
# upsampled: the official CUDA kernel's constant (p = e^-10).
OUTSIDE_LOG_PROB = -10.
# The official loss clamps p to [1e-9, 1 - 1e-9] before taking its logit.
MAX_MASK_LOGIT = math.log((1 - 1e-9) / 1e-9)


def embedding_log_probs(pixel_embed: Tensor, embeds: Tensor,
                        margins: Tensor) -> Tensor:
    """``log p(x) = -sum_d m_d (e_x,d - q_d)^2`` of every pixel and proposal.

    The square is expanded into three matmuls over (N, D) x (D, H W), so
    memory is N H W instead of the N D H W of a broadcast difference (the
    official code needs a CUDA kernel for the same reason).

    Args:
        pixel_embed (Tensor): Pixel embeddings e, (D, H, W).
        embeds (Tensor): Proposal embeddings q, (N, D).
        margins (Tensor): Proposal margins m > 0, (N, D).

    Returns:
        Tensor: (N, H, W), <= 0, float32. Clamped at 0 because the
        expansion can round a zero distance to a tiny negative one. The
        expansion subtracts terms that grow with the squared coordinates
        (~170 units^2 across a COCO image): computed in float32 even under
        autocast, where bf16 or fp16 matmuls would lose the distances.
    """
    d, h, w = pixel_embed.shape
    with torch.autocast(pixel_embed.device.type, enabled=False):
        e = pixel_embed.reshape(d, h * w).float()
        q, m = embeds.float(), margins.float()
        dist = (m @ e.square() - 2 * (m * q) @ e +
                (m * q.square()).sum(1, keepdim=True))
    return -dist.clamp(min=0).reshape(-1, h, w)


def pixel_centres(size: int, stride: int, device: torch.device) -> Tensor:
    """Image coordinates of the centres of ``size`` cells of ``stride``
    pixels, the convention of mmdet's ``MlvlPointGenerator`` (offset 0.5).
    """
    return (torch.arange(size, device=device, dtype=torch.float32) +
            0.5) * stride


@MODELS.register_module()
class EmbedMaskHead(FCOSMaskHead):
    """EmbedMask head (Ying et al., "EmbedMask: Embedding Coupling for
    Instance Segmentation", IJCAI 2021, https://arxiv.org/abs/1912.01954).

    FCOS finds the objects; each location also predicts a proposal embedding
    q and a per-dimension margin m on the box tower, and a pixel-embedding
    branch on P3 gives every pixel an embedding e at stride 4. A pixel
    belongs to a proposal with probability ``exp(-sum_d m_d (e_d - q_d)^2)``.

    The "new version" of the official code (the IJCAI paper's method) is
    followed where the paper is silent:

    - FCOS "imprv": centre sampling (radius 1.5 around the box centre),
      normalised box targets, centerness on the box tower, GIoU; a location
      is positive only if its pixel lies inside the GT mask
      (``sample_in_mask``; the author's later AdelaiDet code turns it off
      because it hurts box AP, so it is a switch).
    - D = 16 dimensions; the first two are spatial aware
      (``spatial_aware``): the prediction plus the pixel's image coordinates
      ``/ position_divisor``, times one learned scale shared by pixels and
      proposals. Their margins pass a per-level scale; all margins are the
      exp of a 3x3 conv on ``box_tower / margin_reduce_factor``, with the
      bias set so that p = 0.5 at a distance of ``prior_margin`` units.
      ``position_divisor`` 100 and ``prior_margin`` 2 put that at 200 px
      for COCO images; smaller images want a smaller divisor.
    - Mask loss on one proposal per GT: the positive whose predicted box
      (detached) has the largest IoU with the GT box (the official authors'
      advice, in place of all positives with IoU > 0.5). The
      Lovasz hinge of logit(p) over the whole stride-4 map against the GT
      mask resized there with bilinear sampling and ``> 0``; mean over an
      image's instances, then over images (empty images count), weight 0.5.
    - The pixel branch: ``num_mask_convs`` conv-GN-ReLU on P3, a 3x3 conv
      to D channels, bilinear x2 to stride 4. The coordinates are added at
      stride 4 after the upsampling (the official code adds them at stride
      8 before it): the same inside the map, exact at its border.
    - Inference: the official candidates (``nms_pre_rank`` ``'cls_ctr'``:
      per level the class scores above ``score_thr``, the ``nms_pre`` best
      by cls x centerness); scores cls x centerness (no square root),
      class-wise NMS 0.6, masks from log p inside the box padded by ``box_padding``
      stride-4 cells (cells whose centre is that close to the box) and
      ``OUTSIDE_LOG_PROB`` elsewhere, bilinearly upsampled as
      log-probabilities, thresholded at ln(``mask_thr``); 0.53 was chosen
      on the evaluation split in the original (its ``multi_test``).

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of the pyramid levels.
        embed_dim (int): D, dimensions of the embeddings.
        spatial_aware (bool): The first two dimensions get the image
            coordinates; False makes every dimension spatial free.
        position_divisor (float): Pixels per embedding unit.
        prior_margin (float): Distance in embedding units at which p = 0.5
            at initialisation.
        margin_reduce_factor (float): Divisor of the box-tower features
            that feed the margin conv.
        num_mask_convs (int): Convs of the pixel branch on P3.
        mask_stride (int): Stride of the pixel embedding; a divisor of the
            first level's stride.
        sample_in_mask (bool): Positives must lie inside their GT mask.
        loss_mask (dict): Loss on mask logits, per instance.
        strides (Sequence[int]): Strides of the levels, P3-P7's (mmdet's
            anchor-free default, 4-64, is not FCOS's).
        **kwargs: :class:`FCOSHead` arguments; the official "imprv" FCOS
            settings are the defaults here.

    Label convention: foreground ``[0, num_classes - 1]``, background
    ``num_classes``.
    """

    TEST_CFG_DEFAULTS = dict(
        nms_pre=1000,
        nms_pre_rank='cls_ctr',
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        mask_thr=0.53,
        box_padding=2)

    LEVEL_OUTPUTS = ('embeds', 'margins')

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 embed_dim: int = 16,
                 spatial_aware: bool = True,
                 position_divisor: float = 100.,
                 prior_margin: float = 2.,
                 margin_reduce_factor: float = 32.,
                 num_mask_convs: int = 4,
                 mask_stride: int = 4,
                 sample_in_mask: bool = True,
                 loss_mask: ConfigType = dict(
                     type='LovaszHingeLoss', loss_weight=0.5),
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 center_sampling: bool = True,
                 norm_on_bbox: bool = True,
                 centerness_on_reg: bool = True,
                 conv_bias: bool = True,
                 loss_bbox: ConfigType = dict(type='GIoULoss',
                                              loss_weight=1.0),
                 **kwargs) -> None:
        if spatial_aware and embed_dim < 2:
            raise ValueError('spatial_aware needs embed_dim >= 2, got '
                             f'{embed_dim}')
        if position_divisor <= 0 or prior_margin <= 0:
            raise ValueError('position_divisor and prior_margin must be > 0, '
                             f'got {position_divisor} and {prior_margin}')
        self.embed_dim = embed_dim
        self.spatial_aware = spatial_aware
        self.position_divisor = position_divisor
        self.prior_margin = prior_margin
        self.margin_reduce_factor = margin_reduce_factor
        self.num_mask_convs = num_mask_convs
        self.mask_stride = mask_stride
        self.sample_in_mask = sample_in_mask
        super().__init__(
            num_classes,
            in_channels,
            strides=strides,
            center_sampling=center_sampling,
            norm_on_bbox=norm_on_bbox,
            centerness_on_reg=centerness_on_reg,
            conv_bias=conv_bias,
            loss_bbox=loss_bbox,
            **kwargs)
        if self.strides[0] % mask_stride:
            raise ValueError(f'mask_stride {mask_stride} must divide the '
                             f'first level stride {self.strides[0]}')
        self.loss_mask = MODELS.build(loss_mask)

    def _init_layers(self) -> None:
        """Add the embedding and margin convs and the pixel branch to the
        FCOS layers."""
        super()._init_layers()
        d, c = self.embed_dim, self.feat_channels
        self.conv_embed = nn.Conv2d(c, d, 3, padding=1)
        self.conv_margin = nn.Conv2d(c, d, 3, padding=1)
        self.margin_scales = nn.ModuleList([Scale(1.0) for _ in self.strides])
        self.position_scale = Scale(1.0)
        self.mask_convs = nn.Sequential(*[
            ConvModule(
                self.in_channels if i == 0 else c,
                c,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.conv_bias) for i in range(self.num_mask_convs)
        ])
        self.conv_pixel_embed = nn.Conv2d(c, d, 3, padding=1)

    def init_weights(self) -> None:
        """FCOS's initialisation, then the margin bias of the prior margin:
        ``exp(bias) * prior_margin^2 = ln 2`` gives p = 0.5 at that
        distance along one dimension."""
        super().init_weights()
        nn.init.constant_(self.conv_margin.bias,
                          math.log(math.log(2) / self.prior_margin**2))

    def _add_positions(self, embed: Tensor, stride: int) -> Tensor:
        """Add the scaled (x, y) image coordinates of each cell to the two
        spatial dimensions of ``embed`` (B, D, h, w)."""
        if not self.spatial_aware:
            return embed
        h, w = embed.shape[-2:]
        ys = pixel_centres(h, stride, embed.device)
        xs = pixel_centres(w, stride, embed.device)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'))
        positions = self.position_scale(grid / self.position_divisor)
        return torch.cat([embed[:, :2] + positions, embed[:, 2:]], dim=1)

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], ...]:
        """Forward all levels and the pixel branch.

        Args:
            x (tuple[Tensor]): Pyramid levels, each (B, C, h, w).

        Returns:
            tuple: Per level lists ``cls_scores`` (B, num_classes, h, w),
            ``bbox_preds`` (B, 4, h, w), ``centernesses`` (B, 1, h, w),
            ``embeds`` (B, D, h, w) and ``margins`` (B, D, h, w); and
            ``pixel_embeds`` (B, D, H, W) from the first level.
        """
        outs = multi_apply(self.forward_single, x, self.scales, self.strides,
                           self.margin_scales)
        return (*outs, self.forward_pixel(x[0]))

    def forward_single(self, x: Tensor, scale: Scale, stride: int,
                       margin_scale: Scale) -> Tuple[Tensor, ...]:
        """FCOS outputs of one level plus its proposal embeddings (B, D, h,
        w) and margins (B, D, h, w)."""
        cls_score, bbox_pred, cls_feat, reg_feat = super(
            FCOSHead, self).forward_single(x)
        centerness = self.conv_centerness(
            reg_feat if self.centerness_on_reg else cls_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
        embed = self._add_positions(self.conv_embed(reg_feat), stride)
        margin = self.conv_margin(reg_feat / self.margin_reduce_factor)
        s = 2 if self.spatial_aware else 0
        # float before exp, as FCOS does for its distances: fp16 would
        # overflow.
        margin = torch.cat([margin_scale(margin[:, :s]), margin[:, s:]],
                           dim=1).float().exp()
        return cls_score, bbox_pred, centerness, embed, margin

    def forward_pixel(self, x: Tensor) -> Tensor:
        """Pixel embeddings (B, D, H, W) at ``mask_stride`` from the first
        level (B, C, h, w)."""
        embed = self.conv_pixel_embed(self.mask_convs(x))
        factor = self.strides[0] // self.mask_stride
        if factor > 1:
            embed = F.interpolate(
                embed,
                scale_factor=factor,
                mode='bilinear',
                align_corners=False)
        return self._add_positions(embed, self.mask_stride)

    def _point_mask(self, gt_instances: InstanceData,
                    points: Tensor) -> Optional[Tensor]:
        """With ``sample_in_mask``, positives only inside their GT mask."""
        return (self._points_in_masks(gt_instances, points)
                if self.sample_in_mask else None)

    @staticmethod
    def _points_in_masks(gt_instances: InstanceData,
                         points: Tensor) -> Tensor:
        """(P, G) whether the pixel under each point is in each GT mask;
        points beyond the mask canvas are outside."""
        if 'masks' not in gt_instances:
            raise ValueError('EmbedMaskHead needs gt_instances.masks '
                             '(LoadAnnotations(with_mask=True))')
        masks = gt_instances.masks.to_tensor(
            dtype=torch.bool, device=points.device)
        h, w = masks.shape[-2:]
        px, py = points.long().T
        valid = (px < w) & (py < h)
        return masks[:, py.clamp(max=h - 1), px.clamp(max=w - 1)].T & \
            valid[:, None]

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        embeds: List[Tensor],
        margins: List[Tensor],
        pixel_embeds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """FCOS's losses (mmdet's, unchanged) and the mask loss.

        Args:
            cls_scores, bbox_preds, centernesses, embeds, margins
                (list[Tensor]): Per level, as :meth:`forward` returns them.
            pixel_embeds (Tensor): (B, D, H, W).
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``
                and ``masks`` of each image.
            batch_img_metas (list[dict]): Meta information of each image.
            batch_gt_instances_ignore: Unused, as in FCOS.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``,
            ``loss_centerness`` and ``loss_mask``.
        """
        losses, points, bbox_preds, pos_inds_list, pos_gt_inds_list = \
            self.fcos_losses(cls_scores, bbox_preds, centernesses,
                             batch_gt_instances, batch_img_metas,
                             batch_gt_instances_ignore)
        losses['loss_mask'] = self.loss_mask_by_feat(
            bbox_preds, levels_to_points(embeds),
            levels_to_points(margins), pixel_embeds, points, pos_inds_list,
            pos_gt_inds_list, batch_gt_instances)
        return losses

    def loss_mask_by_feat(self, bbox_preds: Tensor, embeds: Tensor,
                          margins: Tensor, pixel_embeds: Tensor,
                          points: Tensor, pos_inds_list: List[Tensor],
                          pos_gt_inds_list: List[Tensor],
                          batch_gt_instances: InstanceList) -> Tensor:
        """Mask loss of the best proposal of each GT.

        Args:
            bbox_preds (Tensor): (B, P, 4) distances in pixels.
            embeds (Tensor): (B, P, D).
            margins (Tensor): (B, P, D).
            pixel_embeds (Tensor): (B, D, H, W).
            points (Tensor): (P, 2).
            pos_inds_list, pos_gt_inds_list (list[Tensor]): Positives of
                each image and their GT indices, each (num_pos,).
            batch_gt_instances (list[InstanceData]): GT of each image.

        Returns:
            Tensor: The weighted loss; a zero connected to every parameter
            when no GT has a positive.
        """
        num_imgs = len(batch_gt_instances)
        logits, targets, weights = [], [], []
        for i, gt_instances in enumerate(batch_gt_instances):
            pos_inds, gt_inds = pos_inds_list[i], pos_gt_inds_list[i]
            if pos_inds.numel() == 0:
                continue
            boxes = self.bbox_coder.decode(points[pos_inds],
                                           bbox_preds[i, pos_inds].detach())
            ious = bbox_overlaps(
                boxes, gt_instances.bboxes[gt_inds], is_aligned=True)
            best, gts = best_proposal_per_gt(ious, gt_inds,
                                             len(gt_instances))
            log_probs = embedding_log_probs(pixel_embeds[i],
                                            embeds[i, pos_inds[best]],
                                            margins[i, pos_inds[best]])
            logits.append(log_probs_to_logits(log_probs))
            targets.append(
                self._mask_targets(gt_instances, gts, log_probs.shape[-2:]))
            weights.append(log_probs.new_full((len(gts), ),
                                              1 / (len(gts) * num_imgs)))
        if not logits:
            return zero_loss(self, pixel_embeds)
        # Mean over each image's instances, then over all images.
        return self.loss_mask(
            torch.cat(logits),
            torch.cat(targets),
            weight=torch.cat(weights),
            reduction_override='sum')

    def _mask_targets(self, gt_instances: InstanceData, gt_inds: Tensor,
                      size: Tuple[int, int]) -> Tensor:
        """GT masks ``gt_inds`` on the (H, W) pixel-embedding grid: put on
        a canvas of the map's extent in pixels, bilinearly resized and
        ``> 0`` as the official code (which slightly dilates them).

        Returns:
            Tensor: (len(gt_inds), H, W), float 0/1.
        """
        return (gt_masks_on_grid(gt_instances.masks, gt_inds, size,
                                 self.mask_stride) > 0).float()

    def _predict_masks(self, results: InstanceData, pixel_embed: Tensor,
                       img_meta: dict, cfg: ConfigDict,
                       rescale: bool) -> Tensor:
        """Bool masks (N, h, w) at ``ori_shape`` (``rescale``) or
        ``img_shape`` of detections with ``bboxes`` at ``img_shape``."""
        out_h, out_w = img_meta['ori_shape' if rescale else 'img_shape'][:2]
        if len(results) == 0:
            return pixel_embed.new_zeros((0, out_h, out_w), dtype=torch.bool)
        log_probs = embedding_log_probs(pixel_embed, results.embeds,
                                        results.margins)
        h, w = log_probs.shape[-2:]
        stride = self.mask_stride
        pad = cfg.box_padding * stride
        x1, y1, x2, y2 = (results.bboxes[:, k, None] for k in range(4))
        xs = pixel_centres(w, stride, log_probs.device)
        ys = pixel_centres(h, stride, log_probs.device)
        in_x = (xs >= x1 - pad) & (xs <= x2 + pad)  # (N, W)
        in_y = (ys >= y1 - pad) & (ys <= y2 + pad)  # (N, H)
        log_probs = log_probs.masked_fill(
            ~(in_y[:, :, None] & in_x[:, None, :]), OUTSIDE_LOG_PROB)
        log_probs = self.to_output_size(log_probs, stride, img_meta, rescale)
        return log_probs > math.log(cfg.mask_thr)


def best_proposal_per_gt(ious: Tensor, gt_inds: Tensor,
                         num_gts: int) -> Tuple[Tensor, Tensor]:
    """The positive with the largest IoU for each GT that has positives.

    Args:
        ious (Tensor): IoU of each positive's box with its GT box, (N,).
        gt_inds (Tensor): GT index of each positive, (N,).
        num_gts (int): G.

    Returns:
        tuple[Tensor, Tensor]: Indices into the N positives of the chosen
        ones and their GT indices, each (G',) with G' <= G GTs that have a
        positive; ties go to the first positive.
    """
    if gt_inds.numel() == 0:
        return gt_inds, gt_inds
    gts = torch.arange(num_gts, device=gt_inds.device)
    member = gt_inds[None] == gts[:, None]  # (G, N)
    best = torch.where(member, ious[None], -1.).argmax(1)
    has = member.any(1)
    return best[has], has.nonzero().reshape(-1)


def log_probs_to_logits(log_probs: Tensor) -> Tensor:
    """``logit(p) = ln p - ln(1 - p)`` from ``ln p`` without forming p
    (``expm1`` keeps small distances exact), clamped to the official
    ``p in [1e-9, 1 - 1e-9]``."""
    logits = log_probs - torch.log(-torch.expm1(log_probs.clamp(max=-1e-12)))
    return logits.clamp(-MAX_MASK_LOGIT, MAX_MASK_LOGIT)
