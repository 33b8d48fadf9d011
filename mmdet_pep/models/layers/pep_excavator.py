"""Object excavating of PEP (§3.3, Eq. 3-4, Fig. 3).

Shape shorthand used below:
    B: images, N: original descriptors of one image, K: key pixels,
    G: GT instances, D: descriptor channels, C: foreground classes,
    F: excavation feature channels, He x We: excavation map.

Coordinates are normalised to [-1, 1] over the padded batch input, with
pixel *centres* at ``(i + 0.5) / size * 2 - 1`` so that grid cells of every
resolution share one frame.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ..utils import coord_grid, local_peaks, zero_loss
from ..utils.ranking import topk_stable


@MODELS.register_module()
class PEPExcavator(BaseModule):
    """Object excavating subnetwork of `Perceive, Excavate and Purify: A
    Novel Object Mining Framework for Instance Segmentation
    <https://arxiv.org/abs/2304.08826>`_ (§3.3, Fig. 3).

    For each original descriptor ``I`` it predicts ``E_ind``: a map of the
    centres of *other* instances around that instance (Eq. 3). The map is
    conditioned on ``I`` with a dynamic two-layer 1x1 network (CondInst
    style) applied to a shared excavation feature plus the coordinates
    relative to the original; this keeps one map per descriptor at the cost
    of a few hundred multiply-adds per pixel. Peaks of ``E_ind`` are the key
    pixels. Each key pixel gets a *mined descriptor*: the original
    descriptor concatenated with the key pixel's absolute and relative
    coordinates (CoordConv) through an MLP, and a C+1-way classification of
    the key pixel (Eq. 4).

    Training uses teacher forcing: the key pixels are the centres of the GT
    neighbours, so each neighbour gets a mined descriptor with a mask
    target. ``num_neg_keys`` predicted peaks away from the neighbours'
    centres are added per original with the background label, so that the
    key-pixel classifier learns to reject false peaks at inference.

    "Near" (the paper does not define it): GT ``j`` is a neighbour of the
    original's instance ``i`` if their boxes intersect after box ``i`` is
    scaled by ``near_ratio`` about its centre, which covers touching and
    overlapping objects of every size.

    Args:
        num_classes (int): Number of foreground classes C.
        in_channels (int): Channels of the general feature B the excavation
            feature is computed from.
        desc_channels (int): Channels D of instance descriptors.
        feat_channels (int): Channels of the excavation feature map.
        hidden_channels (int): Hidden width of the dynamic network.
        num_convs (int): 3x3 convs of the excavation feature branch; the
            first one has stride 2 (B at stride 4 -> map at stride 8).
        near_ratio (float): Box scale of the neighbourhood rule above.
        center_radius (int): Positive radius (in map cells) around each
            neighbour centre in the target of ``E_ind``.
        max_keys_train (int): At most this many neighbours (closest first)
            per original are excavated in training.
        num_neg_keys (int): Predicted peaks per original, away from its
            neighbours' centres, classified as background in training.
        norm_cfg (dict): Norm of the excavation feature branch.
        loss_excavate (dict): Loss of ``E_ind`` (Eq. 3). The paper writes
            CE; the default focal loss is a departure that down-weights the
            easy negatives, because a map has a handful of positive pixels.
            ``dict(type='CrossEntropyLoss', use_sigmoid=True)`` is the
            literal CE.
        loss_cls (dict): Key-pixel classification loss over C+1 classes
            (Eq. 4, softmax CE).
        init_cfg (dict or list[dict], optional): Initialization config. The
            generator of dynamic weights starts small (as CondInst's
            controller) so that the first maps are flat; the mining MLP and
            key classifier keep PyTorch's default init, because three
            stacked layers at std 0.01 barely pass a gradient.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 256,
                 desc_channels: int = 256,
                 feat_channels: int = 16,
                 hidden_channels: int = 16,
                 num_convs: int = 2,
                 near_ratio: float = 1.5,
                 center_radius: int = 1,
                 max_keys_train: int = 8,
                 num_neg_keys: int = 2,
                 norm_cfg: OptConfigType = dict(
                     type='GN', num_groups=8, requires_grad=True),
                 loss_excavate: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 init_cfg: OptMultiConfig = [
                     dict(type='Normal', layer='Conv2d', std=0.01),
                     dict(
                         type='Normal',
                         std=0.01,
                         override=dict(name='param_generator'))
                 ]):
        super().__init__(init_cfg=init_cfg)
        if near_ratio < 1:
            raise ValueError(f'near_ratio must be >= 1, got {near_ratio}')
        for name, value in (('center_radius', center_radius),
                            ('num_neg_keys', num_neg_keys)):
            if value < 0:
                raise ValueError(f'{name} must be >= 0, got {value}')
        if min(in_channels, desc_channels, feat_channels,
               hidden_channels) < 1:
            raise ValueError(
                'in_channels, desc_channels, feat_channels and '
                f'hidden_channels must be >= 1, got {in_channels}, '
                f'{desc_channels}, {feat_channels} and {hidden_channels}')
        if max_keys_train < 1 or num_convs < 1:
            raise ValueError('max_keys_train and num_convs must be >= 1, got '
                             f'{max_keys_train} and {num_convs}')
        self.num_classes = num_classes
        self.desc_channels = desc_channels
        self.feat_channels = feat_channels
        self.hidden_channels = hidden_channels
        self.near_ratio = near_ratio
        self.center_radius = center_radius
        self.max_keys_train = max_keys_train
        self.num_neg_keys = num_neg_keys

        self.feat_convs = nn.Sequential(*[
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                3,
                stride=2 if i == 0 else 1,
                padding=1,
                norm_cfg=norm_cfg) for i in range(num_convs)
        ])
        # Dynamic net per descriptor: [feat (F) + rel. coords (2)] -> hidden
        # -> 1 logit. Its weights and biases are generated from I.
        c_in = feat_channels + 2
        self._param_splits = (c_in * hidden_channels, hidden_channels,
                              hidden_channels, 1)
        self.param_generator = nn.Linear(desc_channels,
                                         sum(self._param_splits))
        # Mined descriptor: [I (D), key abs. xy (2), key rel. xy (2)] -> D.
        self.mine_fcs = nn.Sequential(
            nn.Linear(desc_channels + 4, desc_channels), nn.ReLU(True),
            nn.Linear(desc_channels, desc_channels))
        self.key_cls = nn.Linear(desc_channels, num_classes + 1)
        self.loss_excavate = MODELS.build(loss_excavate)
        self.loss_cls = MODELS.build(loss_cls)

    def forward(self, mask_feats: Tensor) -> Tensor:
        """Shared excavation features.

        Args:
            mask_feats (Tensor): General feature B, shape (B, C_B, H, W).

        Returns:
            Tensor: Shape (B, F, He, We), at half the resolution of B.
        """
        return self.feat_convs(mask_feats)

    def excavate_maps(self, exc_feat: Tensor, descriptors: Tensor,
                      ori_xy: Tensor) -> Tensor:
        """Predict ``E_ind`` logits for each original descriptor (Eq. 3).

        Args:
            exc_feat (Tensor): Excavation features of one image,
                shape (F, He, We).
            descriptors (Tensor): Original descriptors, shape (N, D).
            ori_xy (Tensor): Normalised locations of the originals,
                shape (N, 2).

        Returns:
            Tensor: Logits of shape (N, He, We).
        """
        n = descriptors.size(0)
        f, h, w = exc_feat.shape
        w1, b1, w2, b2 = self.param_generator(descriptors).split(
            self._param_splits, dim=1)
        w1 = w1.view(n, self.hidden_channels, f + 2)
        grid = coord_grid(h, w, exc_feat.device).view(2, h * w)
        rel = grid[None] - ori_xy[:, :, None]  # (N, 2, He*We)
        hidden = torch.einsum('nkf,fp->nkp', w1[..., :f],
                              exc_feat.reshape(f, h * w))
        hidden = hidden + torch.einsum('nkc,ncp->nkp', w1[..., f:], rel)
        hidden = F.relu(hidden + b1[:, :, None])
        logits = torch.einsum('nk,nkp->np', w2, hidden) + b2
        return logits.view(n, h, w)

    def mine(self, descriptors: Tensor, ori_xy: Tensor,
             key_xy: Tensor) -> Tuple[Tensor, Tensor]:
        """Learn mined descriptors and classify key pixels (Eq. 4).

        Args:
            descriptors (Tensor): Original descriptor of each key pixel,
                shape (K, D).
            ori_xy (Tensor): Location of that original, shape (K, 2).
            key_xy (Tensor): Key pixel locations, shape (K, 2).

        Returns:
            tuple[Tensor, Tensor]: Mined descriptors (K, D) and key-pixel
            class logits (K, C+1), background last.
        """
        mined = self.mine_fcs(
            torch.cat([descriptors, key_xy, key_xy - ori_xy], dim=1))
        return mined, self.key_cls(mined)

    def get_targets(self, gt_boxes: Tensor, gt_centers: Tensor,
                    ori_gt_inds: Tensor, map_size: Tuple[int, int],
                    pad_shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Targets of ``E_ind`` and the teacher-forced key pixels.

        Args:
            gt_boxes (Tensor): GT boxes (x1, y1, x2, y2) in padded-input
                pixels, shape (G, 4).
            gt_centers (Tensor): GT mask centres of mass (x, y) in pixels,
                shape (G, 2).
            ori_gt_inds (Tensor): GT instance of each original, shape (N,).
            map_size (tuple[int, int]): (He, We).
            pad_shape (tuple[int, int]): (H, W) of the padded input.

        Returns:
            tuple[Tensor, Tensor]:

            - heat_targets (Tensor): Binary targets, shape (N, He, We).
            - neighbours (Tensor): Bool (N, G): GT ``j`` is a neighbour of
              original ``n`` and is excavated (at most ``max_keys_train``
              per original, closest first).
        """
        h, w = map_size
        n = ori_gt_inds.numel()
        boxes = gt_boxes[ori_gt_inds]
        ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) / 2 * self.near_ratio
        grown = torch.cat([ctr - half, ctr + half], dim=1)  # (N, 4)
        inter_w = (torch.minimum(grown[:, None, 2], gt_boxes[None, :, 2]) -
                   torch.maximum(grown[:, None, 0], gt_boxes[None, :, 0]))
        inter_h = (torch.minimum(grown[:, None, 3], gt_boxes[None, :, 3]) -
                   torch.maximum(grown[:, None, 1], gt_boxes[None, :, 1]))
        near = (inter_w > 0) & (inter_h > 0)
        near[torch.arange(n, device=near.device), ori_gt_inds] = False
        if near.any():
            dist = torch.cdist(gt_centers[ori_gt_inds], gt_centers)
            dist = dist.masked_fill(~near, float('inf'))
            k = min(self.max_keys_train, dist.size(1))
            rank = dist.argsort(dim=1).argsort(dim=1)
            near &= rank < k

        # Centres of mass lie inside the padded input (0 < c < size), so
        # their cells are always on the map.
        cell_x = (gt_centers[:, 0] / pad_shape[1] * w).long()
        cell_y = (gt_centers[:, 1] / pad_shape[0] * h).long()
        r = self.center_radius
        ys = torch.arange(h, device=gt_centers.device)
        xs = torch.arange(w, device=gt_centers.device)
        # (G, He, We): the square of radius r around each GT centre cell.
        disk = (((ys[None, :, None] - cell_y[:, None, None]).abs() <= r) &
                ((xs[None, None, :] - cell_x[:, None, None]).abs() <= r))
        heat = (near.float() @ disk.flatten(1).float()).clamp(max=1)
        return heat.view(n, h, w), near

    def loss(self, exc_feats: Tensor, batch_originals: List[dict],
             batch_gt: List[dict], pad_shape: Tuple[int, int]
             ) -> Tuple[Dict[str, Tensor], List[dict]]:
        """Excavating losses of a batch (Eq. 3-4) and the mined descriptors.

        ``loss_excavate`` (L_E) is the sum of ``loss_excavate`` over all
        maps of the batch divided by their positives plus one unit per map:
        focal-style normalisation by the positives, where the extra unit
        keeps a map without any neighbour (a lone object) from dividing its
        whole sum by 1. ``loss_excavate_cls`` (L_PE) is the mean of
        ``loss_cls`` over all key pixels of the batch.

        Args:
            exc_feats (Tensor): Excavation features, shape (B, F, He, We).
            batch_originals (list[dict]): Per image, the originals to
                excavate: ``descriptors`` (N, D), ``xy`` (N, 2) normalised
                locations and ``gt_inds`` (N,) their GT instances.
            batch_gt (list[dict]): Per image ``boxes`` (G, 4) and
                ``centers`` (G, 2, x y) in padded-input pixels, ``labels``
                (G,).
            pad_shape (tuple[int, int]): (H, W) of the padded input.

        Returns:
            tuple[dict, list[dict]]: The finished, weighted losses
            ``loss_excavate`` and ``loss_excavate_cls``, and per image the
            positive mined descriptors: ``descriptors`` (K, D), ``xy``
            (K, 2) and ``gt_inds`` (K,).
        """
        sum_exc, sum_cls, num_pos, num_keys = 0., 0., 0., 0
        mined = []
        for exc_feat, ori, gt in zip(exc_feats, batch_originals, batch_gt):
            n = ori['descriptors'].size(0)
            if n == 0:
                mined.append(None)
                continue
            exc, heat_pos, cls, keys, mined_pos = self._loss_single(
                exc_feat, ori['descriptors'], ori['xy'], ori['gt_inds'],
                gt['boxes'], gt['centers'], gt['labels'], pad_shape)
            sum_exc, sum_cls = sum_exc + exc, sum_cls + cls
            num_pos = num_pos + float(heat_pos) + n
            num_keys += keys
            mined.append(mined_pos)
        # Terms without targets are exact zeros that still touch every
        # parameter, so the graph (and DDP) stays whole.
        zero = zero_loss(self, exc_feats) + exc_feats.sum() * 0
        losses = dict(
            loss_excavate=zero + sum_exc / max(num_pos, 1.),
            loss_excavate_cls=zero + sum_cls / max(num_keys, 1))
        return losses, mined

    def _loss_single(self, exc_feat: Tensor, descriptors: Tensor,
                     ori_xy: Tensor, ori_gt_inds: Tensor, gt_boxes: Tensor,
                     gt_centers: Tensor, gt_labels: Tensor,
                     pad_shape: Tuple[int, int]) -> tuple:
        """Summed excavating losses of one image and its mined descriptors.

        Args:
            exc_feat (Tensor): Excavation features, shape (F, He, We).
            descriptors (Tensor): Original descriptors, shape (N, D).
            ori_xy (Tensor): Locations of the originals, shape (N, 2).
            ori_gt_inds (Tensor): GT index of each original, shape (N,).
            gt_boxes (Tensor): Shape (G, 4), padded-input pixels.
            gt_centers (Tensor): Shape (G, 2), padded-input pixels (x, y).
            gt_labels (Tensor): Shape (G,).
            pad_shape (tuple[int, int]): (H, W) of the padded input.

        Returns:
            tuple: Summed ``loss_excavate`` over the N maps, their number
            of positive pixels, summed ``loss_cls`` over the key pixels,
            the number of key pixels, and the positive mined descriptors
            (see :meth:`loss`).
        """
        h, w = exc_feat.shape[-2:]
        logits = self.excavate_maps(exc_feat, descriptors, ori_xy)
        heat, near = self.get_targets(gt_boxes, gt_centers, ori_gt_inds,
                                      (h, w), pad_shape)
        # Focal / BCE convention of mmdet: class 0 is "centre", 1 is "not".
        heat_labels = (1 - heat).long().flatten()
        loss_exc = self.loss_excavate(
            logits.reshape(-1, 1),
            heat_labels,
            reduction_override='sum')
        num_heat_pos = heat.sum()

        ori_idx, gt_idx = near.nonzero(as_tuple=True)
        grid = coord_grid(h, w, exc_feat.device)
        cx = (gt_centers[gt_idx, 0] / pad_shape[1] * w).long()
        cy = (gt_centers[gt_idx, 1] / pad_shape[0] * h).long()
        key_xy = grid[:, cy, cx].t()  # snap to cells, as at inference

        with torch.no_grad():
            # Peaks far (> r cells) from the excavated neighbours' centres
            # are negatives.
            near_any = F.max_pool2d(heat[:, None],
                                    2 * self.center_radius + 1, 1,
                                    self.center_radius)[:, 0]
            peaks = local_peaks(logits.detach().sigmoid())
            peaks = peaks.masked_fill(near_any > 0, 0).flatten(1)
            k = min(self.num_neg_keys, peaks.size(1))
            val, pos = peaks.topk(k)
            keep = val > 0
            neg_ori = torch.arange(
                descriptors.size(0),
                device=pos.device)[:, None].expand_as(pos)[keep]
            neg_pos = pos[keep]
        neg_xy = grid.flatten(1)[:, neg_pos].t()
        num_pos = gt_idx.numel()
        key_ori = torch.cat([ori_idx, neg_ori])
        key_xy = torch.cat([key_xy, neg_xy])
        key_labels = torch.cat([
            gt_labels[gt_idx],
            gt_labels.new_full((neg_pos.numel(), ), self.num_classes)
        ])

        mined, cls_logits = self.mine(descriptors[key_ori], ori_xy[key_ori],
                                      key_xy)
        loss_cls = self.loss_cls(
            cls_logits, key_labels, reduction_override='sum')
        mined_pos = dict(
            descriptors=mined[:num_pos], xy=key_xy[:num_pos], gt_inds=gt_idx)
        return (loss_exc, num_heat_pos, loss_cls, key_labels.numel(),
                mined_pos)

    def predict(self, exc_feat: Tensor, descriptors: Tensor, ori_xy: Tensor,
                cfg: ConfigType) -> dict:
        """Excavate mined descriptors around the originals of one image.

        Args:
            exc_feat (Tensor): Shape (F, He, We).
            descriptors (Tensor): Original descriptors, shape (N, D).
            ori_xy (Tensor): Shape (N, 2).
            cfg (dict): ``key_thr`` (peak threshold on sigmoid(E)) and
                ``max_keys`` (top peaks kept per original).

        Returns:
            dict: ``descriptors`` (K, D), ``xy`` (K, 2), ``scores`` (K, C)
            (class probability x peak confidence) of the mined descriptors.
        """
        h, w = exc_feat.shape[-2:]
        heat = self.excavate_maps(exc_feat, descriptors, ori_xy).sigmoid()
        peaks = local_peaks(heat).flatten(1)
        k = min(cfg['max_keys'], peaks.size(1))
        # A plateau of E gives equal peaks: the lower pixel index first.
        val, pos = topk_stable(peaks, k)
        keep = val > cfg['key_thr']
        ori_idx = torch.arange(
            descriptors.size(0), device=pos.device)[:, None].expand_as(pos)
        ori_idx, pos, val = ori_idx[keep], pos[keep], val[keep]
        key_xy = coord_grid(h, w, exc_feat.device).flatten(1)[:, pos].t()
        mined, cls_logits = self.mine(descriptors[ori_idx], ori_xy[ori_idx],
                                      key_xy)
        scores = cls_logits.softmax(dim=1)[:, :-1] * val[:, None]
        return dict(descriptors=mined, xy=key_xy, scores=scores)
