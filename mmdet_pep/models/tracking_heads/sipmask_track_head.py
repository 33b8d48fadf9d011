"""SipMask-VIS's track head: a stride-8 embedding map and the embedding of
an instance at its box centre.

Shape shorthand: B images, C channels, h x w the stride-8 map, N instances
of the current (key) frame, M of the previous (reference) frame, D the
embedding dimension (512).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, normal_init
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig


def centre_cells(bboxes: Tensor, stride: int, size: Tuple[int, int]) -> Tensor:
    """(row, column) of the cell holding each box centre, clamped to the
    map: ``floor((x1 + x2) / 2 / stride)``, as the official code samples.

    Args:
        bboxes (Tensor): (N, 4) x1, y1, x2, y2 in input pixels.
        stride (int): Pixels per cell.
        size (tuple[int, int]): (h, w) of the map.

    Returns:
        Tensor: (N, 2) long.
    """
    cx = ((bboxes[:, 0] + bboxes[:, 2]) / 2 / stride).floor().long()
    cy = ((bboxes[:, 1] + bboxes[:, 3]) / 2 / stride).floor().long()
    return torch.stack(
        [cy.clamp(0, size[0] - 1),
         cx.clamp(0, size[1] - 1)], dim=1)


def jitter_boxes(bboxes: Tensor, amplitude: float,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Boxes moved by up to ``amplitude`` of their size and rescaled by up
    to ``1 +- amplitude``, uniformly (the official reference-box jitter).

    Args:
        bboxes (Tensor): (M, 4).
        amplitude (float): 0.05 officially; 0 returns the boxes.

    Returns:
        Tensor: (M, 4).
    """
    if amplitude == 0 or not len(bboxes):
        return bboxes
    offsets = torch.rand(
        (len(bboxes), 4), generator=generator,
        device=bboxes.device).to(bboxes.dtype) * 2 * amplitude - amplitude
    centre = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    size = (bboxes[:, 2:] - bboxes[:, :2]).abs()
    centre = centre + size * offsets[:, :2]
    size = size * (1 + offsets[:, 2:])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


@MODELS.register_module()
class SipMaskTrackHead(BaseModule):
    """The tracking branch of SipMask-VIS (Cao et al., "SipMask: Spatial
    Information Preservation for Fast Image and Video Instance
    Segmentation", ECCV 2020, https://arxiv.org/abs/2007.14772).

    ``num_convs`` 3x3 convs (GN) shared by P3-P5, each level's output
    resized to P3's size (stride 8) and concatenated, then a 1x1 conv to a
    D-dimensional track map. An instance's embedding is the map's vector at
    the cell of its box centre; the similarity of a current instance to the
    M previous ones is their dot products after a zero "new object"
    column, the layout mmdet's ``MaskTrackRCNNTracker`` scores with the
    detection score, box IoU and label agreement (weights 1, 2, 10, the
    official ``match_coeff``).

    Training, as the official head: the key frame's samples are the
    detector's positives (their predicted boxes, detached) and the
    reference frame's are its GT boxes jittered by up to 5%; a positive's
    target is 1 + the index of its GT's instance in the reference frame, or
    0 ("new") when that instance is not there; cross-entropy over the
    M + 1 columns averaged over an image's samples, then over images.

    Choices where the official code is silent or breaks:

    - The level outputs are resized to P3's size instead of scaled x2/x4,
      the same for inputs padded to 32 and robust otherwise.
    - An image without positives adds an exact zero to the loss (the
      official cross-entropy of no samples is NaN).

    Args:
        in_channels (int): FPN channels.
        feat_channels (int): Channels of the track convs.
        num_convs (int): Track convs (``stacked_convs - 1`` officially: 3).
        num_levels (int): FPN levels used, from the first (P3-P5: 3).
        embed_channels (int): D.
        stride (int): Stride of the first level.
        norm_cfg (dict): Norm of the track convs.
        jitter (float): Reference-box jitter in training.
        loss_match (dict): Cross-entropy over the M + 1 columns.
        init_cfg (dict, optional): Initialisation config; by default the
            official one: the track convs normal with std 0.01 (see
            :meth:`init_weights`), the 1x1 conv PyTorch's default.
    """

    def __init__(self,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 num_convs: int = 3,
                 num_levels: int = 3,
                 embed_channels: int = 512,
                 stride: int = 8,
                 norm_cfg: ConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 jitter: float = 0.05,
                 loss_match: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_levels = num_levels
        self.stride = stride
        self.jitter = jitter
        self.track_convs = nn.Sequential(*[
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                bias=norm_cfg is None) for i in range(num_convs)
        ])
        self.conv_embed = nn.Conv2d(feat_channels * num_levels,
                                    embed_channels, 1)
        self.loss_match = MODELS.build(loss_match)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for module in self.track_convs:
                normal_init(module.conv, std=0.01)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """The track map.

        Args:
            feats (Sequence[Tensor]): FPN levels from stride ``stride``;
                the first ``num_levels`` are used, each (B, C, h_l, w_l).

        Returns:
            Tensor: (B, D, h, w) at the first level's size.
        """
        size = feats[0].shape[-2:]
        levels = []
        for feat in feats[:self.num_levels]:
            out = self.track_convs(feat)
            if out.shape[-2:] != size:
                out = F.interpolate(
                    out, size=size, mode='bilinear', align_corners=False)
            levels.append(out)
        return self.conv_embed(torch.cat(levels, dim=1))

    def embed(self, track_map: Tensor, bboxes: Tensor) -> Tensor:
        """Embeddings (N, D) of boxes (N, 4) on one image's map (D, h, w).
        """
        cells = centre_cells(bboxes, self.stride, track_map.shape[-2:])
        return track_map[:, cells[:, 0], cells[:, 1]].t()

    def extract_roi_feats(self, feats: Sequence[Tensor],
                          bboxes: List[Tensor]) -> Tuple[Tensor, List[int]]:
        """Embeddings of the boxes of each image, in the form
        ``MaskTrackRCNNTracker`` calls it.

        Args:
            feats (Sequence[Tensor]): FPN levels of B images.
            bboxes (list[Tensor]): Per image (N_i, 4) in input pixels.

        Returns:
            tuple[Tensor, list[int]]: (sum N_i, D) and the N_i.
        """
        track_map = self(feats)
        embeds = [self.embed(m, b) for m, b in zip(track_map, bboxes)]
        return torch.cat(embeds), [len(b) for b in bboxes]

    def predict(self, roi_feats: Tensor, prev_roi_feats: Tensor) -> Tensor:
        """Similarity logits (N, M + 1): 0 for "new", then dot products.

        Args:
            roi_feats (Tensor): (N, D) of the current frame.
            prev_roi_feats (Tensor): (M, D) of the tracked instances.
        """
        prod = roi_feats @ prev_roi_feats.t()
        return torch.cat([prod.new_zeros(len(prod), 1), prod], dim=1)

    def loss(self, feats: Sequence[Tensor], ref_feats: Sequence[Tensor],
             key_bboxes: List[Tensor], key_gt_inds: List[Tensor],
             key_instance_ids: List[Tensor], ref_bboxes: List[Tensor],
             ref_instance_ids: List[Tensor]) -> dict:
        """Matching loss of the key samples against the reference GT.

        Args:
            feats, ref_feats (Sequence[Tensor]): FPN levels of the key and
                reference frames.
            key_bboxes (list[Tensor]): Per image, the key samples' boxes
                (N, 4) in input pixels.
            key_gt_inds (list[Tensor]): Per image, each sample's GT index
                in the key frame, (N,).
            key_instance_ids (list[Tensor]): Per image, the instance id of
                each key GT, (G,).
            ref_bboxes (list[Tensor]): Per image, the reference GT boxes
                (M, 4).
            ref_instance_ids (list[Tensor]): Per image, their ids (M,).

        Returns:
            dict[str, Tensor]: ``loss_match``.
        """
        track_map, ref_map = self(feats), self(ref_feats)
        # Exact zero on the graph for images without samples.
        loss = track_map.sum() * 0 + ref_map.sum() * 0
        for key_map, ref_map_i, boxes, gt_inds, key_ids, ref_boxes, \
                ref_ids in zip(track_map, ref_map, key_bboxes, key_gt_inds,
                               key_instance_ids, ref_bboxes,
                               ref_instance_ids):
            if not len(boxes):
                continue
            logits = self.predict(
                self.embed(key_map, boxes),
                self.embed(ref_map_i, jitter_boxes(ref_boxes, self.jitter)))
            targets = self.match_targets(key_ids[gt_inds], ref_ids)
            loss = loss + self.loss_match(logits, targets)
        return dict(loss_match=loss / len(key_bboxes))

    @staticmethod
    def match_targets(ids: Tensor, ref_ids: Tensor) -> Tensor:
        """1 + the position of each id among ``ref_ids``, 0 if absent.

        Args:
            ids (Tensor): (N,).
            ref_ids (Tensor): (M,), distinct.

        Returns:
            Tensor: (N,) long.
        """
        same = ids[:, None] == ref_ids[None, :]
        if not same.numel():
            return ids.new_zeros(len(ids), dtype=torch.long)
        position = same.long().argmax(1) + 1
        return torch.where(same.any(1), position, torch.zeros_like(position))
