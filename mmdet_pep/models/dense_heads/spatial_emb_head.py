"""SpatialEmbeddings head: pixel offsets, clustering bandwidths and seed
maps from two ERFNet decoders, and greedy clustering at test time.

Shape shorthand: B images, C classes, S sigma channels (1 or 2), H x W the
output map (the padded input), P pixels (of the foreground of a class in
clustering), K instances found.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptMultiConfig
from ..layers.erfnet import ERFNetDecoder
from ..losses.spatial_emb_loss import instance_gaussians
from ..utils.misc import masks_to_boxes

# A chunk of candidate centres is scored in one op, at most this many
# (candidate, pixel) pairs at once.
CLUSTER_CHUNK_ELEMENTS = 2**22


def greedy_cluster(embeddings: Tensor,
                   bandwidths: Tensor,
                   seeds: Tensor,
                   seed_thr: float = 0.9,
                   mask_thr: float = 0.5,
                   min_pixels: int = 128,
                   min_unclaimed: float = 0.5,
                   max_centres: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """SpatialEmbeddings' greedy clustering of the foreground of one class.

    Repeatedly the unclaimed pixel with the highest seed is a centre, while
    its seed is at least ``seed_thr`` and more than ``min_pixels`` pixels
    are unclaimed; the centre is claimed. Its proposal is the pixels whose
    embedding falls in the centre's Gaussian (its own embedding and
    bandwidth) above ``mask_thr``. The proposal is an instance, scored by
    the centre's seed, if it has more than ``min_pixels`` pixels and more
    than ``min_unclaimed`` of them were unclaimed; its pixels are claimed
    either way.

    Exactly that sequential algorithm, with candidate centres taken in
    order of decreasing seed (ties by index, as an argmax) and their
    Gaussians computed a chunk at a time; device-agnostic.

    Args:
        embeddings (Tensor): e of the foreground pixels, (2, P).
        bandwidths (Tensor): ``exp(10 sigma)`` of those pixels, (S, P).
        seeds (Tensor): Their seed probabilities, (P,).
        seed_thr (float): Lowest seed of a centre.
        mask_thr (float): Gaussian value above which a pixel joins.
        min_pixels (int): A proposal needs more pixels; clustering stops
            when no more than this many pixels are unclaimed.
        min_unclaimed (float): Fraction of a proposal that must have been
            unclaimed.
        max_centres (int, optional): Stop after this many centres were
            tried (every one of them claims a pixel, so the loop ends
            anyway; this bounds it on degenerate maps). No bound if None.

    Returns:
        tuple[Tensor, Tensor]: Masks over the P pixels (K, P) bool and
        scores (K,), in the order found.
    """
    num_pixels = seeds.numel()
    empty = (seeds.new_zeros((0, num_pixels), dtype=torch.bool),
             seeds.new_zeros((0, )))
    if num_pixels <= min_pixels:
        return empty
    order = seeds.argsort(descending=True, stable=True)
    order = order[seeds[order] >= seed_thr]
    unclaimed = torch.ones_like(seeds, dtype=torch.bool)
    num_unclaimed = num_pixels
    chunk = max(1, min(64, CLUSTER_CHUNK_ELEMENTS // num_pixels))
    limit = math.inf if max_centres is None else max_centres
    masks, scores = [], []
    tried = 0
    while len(order) and num_unclaimed > min_pixels and tried < limit:
        order = order[unclaimed[order]]
        centres, order = order[:chunk], order[chunk:]
        proposals = instance_gaussians(
            embeddings, embeddings[:, centres].t(),
            bandwidths[:, centres].t()) > mask_thr  # (chunk, P)
        for centre, proposal in zip(centres.tolist(), proposals):
            if not unclaimed[centre]:
                continue  # claimed by a proposal earlier in this chunk
            if num_unclaimed <= min_pixels or tried >= limit:
                break
            tried += 1
            unclaimed[centre] = False
            size = int(proposal.sum())
            if size > min_pixels and int(
                    unclaimed[proposal].sum()) > min_unclaimed * size:
                masks.append(proposal)
                scores.append(seeds[centre])
            unclaimed &= ~proposal
            num_unclaimed = int(unclaimed.sum())
    if not masks:
        return empty
    return torch.stack(masks), torch.stack(scores)


@MODELS.register_module()
class SpatialEmbHead(BaseMaskHead):
    """SpatialEmbeddings head (Neven et al., "Instance Segmentation by
    Jointly Optimizing Spatial Embeddings and Clustering Bandwidth",
    CVPR 2019, https://arxiv.org/abs/1906.11109).

    Proposal-free: two ERFNet decoders on one stride-8 feature map give, at
    the input resolution, 2 offset and S sigma channels (decoder 0) and one
    seed map per class (decoder 1). A pixel's embedding is ``tanh(offset) +
    (x, y)`` in units of ``grid_unit`` pixels; an instance is the pixels in
    the Gaussian of its centre with bandwidth ``exp(10 sigma)``, and the
    seed map learns that Gaussian's value at each pixel, so that its peaks
    are good centres (:class:`~mmdet_pep.models.losses.SpatialEmbLoss`).
    At test time :func:`greedy_cluster` runs per class on that class's seed
    map.

    Choices where the paper or the official (car-only) code is vague:

    - ``grid_unit``: the official grid spans x in [0, 2] over 2048 px and y
      in [0, 1] over 1024 px, ~1024 px per unit; here pixel (i, j) sits at
      ``(j, i) / grid_unit``, so the grid fits any input size (the official
      fixed 2048 x 1024 buffer breaks on larger images).
    - Output init as the official ``init_output``: offsets start at 0 and
      sigma at 1 (weights 0), so a pixel's Gaussian starts ~6 px wide at
      ``grid_unit`` 1024.
    - The feature map is ``x[in_index]``: the encoder's only output for
      ERFNet. With a sequence of indices (a ResNet + FPN) the maps are
      resized bilinearly to the first one's size (stride 8) and summed:
      decoding P3 alone would leave the FPN's P4/P5 output convs without
      gradient (and DDP waiting for it), while their top-down path
      already flows into P3.
    - Masks leave the head at the input resolution (cropped to
      ``img_shape``); with ``rescale`` they are resized bilinearly to
      ``ori_shape`` and thresholded at 0.5; boxes are the masks' extents.
    - ``max_centres`` in ``test_cfg`` bounds the clustering loop on
      degenerate maps (not in the official code).

    Args:
        num_classes (int): C, one seed map each.
        in_channels (int): Channels of the stride-8 feature map.
        in_index (int | Sequence[int]): Which backbone/neck output to
            decode, or which ones to sum (the first sets the size).
        n_sigma (int): S: 1 (official, circular margin) or 2 (elliptical).
        decoder_channels (Sequence[int]): Channels of the decoders'
            upsampling stages, (64, 16) in ERFNet; their number sets the
            upsampling: stride ``2 ** (len + 1)`` must be the map's.
        grid_unit (float): Pixels per embedding unit.
        loss_mask (dict): :class:`SpatialEmbLoss` config; ``num_classes``
            is filled in from the head.
        train_cfg (dict, optional): Unused; kept for the detector's API.
        test_cfg (dict, optional): ``seed_thr``, ``fg_thr``, ``mask_thr``,
            ``min_pixels``, ``min_unclaimed``, ``max_centres``,
            ``max_per_img`` (defaults: 0.9 as the official test script,
            0.5, 0.5, 128, 0.5, 1000, 100).
        init_cfg (dict, optional): Initialisation config.
    """
    TEST_DEFAULTS = dict(
        seed_thr=0.9,
        fg_thr=0.5,
        mask_thr=0.5,
        min_pixels=128,
        min_unclaimed=0.5,
        max_centres=1000,
        max_per_img=100)

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 128,
                 in_index: Union[int, Sequence[int]] = 0,
                 n_sigma: int = 1,
                 decoder_channels: Sequence[int] = (64, 16),
                 grid_unit: float = 1024.,
                 loss_mask: ConfigType = dict(type='SpatialEmbLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if n_sigma not in (1, 2):
            raise ValueError(f'n_sigma must be 1 or 2, got {n_sigma}')
        self.num_classes = num_classes
        self.in_index = in_index
        self.n_sigma = n_sigma
        self.grid_unit = grid_unit
        self.emb_decoder = ERFNetDecoder(in_channels, 2 + n_sigma,
                                         decoder_channels)
        self.seed_decoder = ERFNetDecoder(in_channels, num_classes,
                                          decoder_channels)
        loss_mask = ConfigDict(loss_mask)
        if loss_mask.setdefault('num_classes', num_classes) != num_classes:
            raise ValueError(
                f'loss_mask.num_classes ({loss_mask.num_classes}) differs '
                f"from the head's num_classes ({num_classes})")
        self.loss_mask = MODELS.build(loss_mask)
        self.sigma_scale = self.loss_mask.sigma_scale
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict({**self.TEST_DEFAULTS, **(test_cfg or {})})
        self._init_output()

    def _init_output(self) -> None:
        """Offsets 0 and sigma 1 at start, the official ``init_output``."""
        conv = self.emb_decoder.output_conv
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias[:2].zero_()
            conv.bias[2:].fill_(1.)

    def init_weights(self) -> None:
        super().init_weights()
        self._init_output()

    def forward(self, x: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Raw outputs of both decoders.

        Args:
            x (Sequence[Tensor]): Backbone or neck outputs; ``x[in_index]``
                (B, in_channels, H / 8, W / 8) is decoded, or the sum of
                the resized maps of a sequence ``in_index``.

        Returns:
            tuple[Tensor, Tensor]: Offsets and sigma (B, 2 + S, H, W) and
            seed logits (B, C, H, W).
        """
        if isinstance(self.in_index, int):
            feat = x[self.in_index]
        else:
            feat = x[self.in_index[0]]
            size = feat.shape[-2:]
            for i in self.in_index[1:]:
                feat = feat + F.interpolate(
                    x[i], size=size, mode='bilinear', align_corners=False)
        return self.emb_decoder(feat), self.seed_decoder(feat)

    def coords(self, h: int, w: int, device: torch.device) -> Tensor:
        """(x, y) of every pixel in embedding units, (2, h, w)."""
        ys = torch.arange(h, device=device, dtype=torch.float32)
        xs = torch.arange(w, device=device, dtype=torch.float32)
        y, x = torch.meshgrid(ys, xs, indexing='ij')
        return torch.stack([x, y]) / self.grid_unit

    def decode(self, emb_preds: Tensor) -> Tuple[Tensor, Tensor]:
        """Embeddings ``tanh(offset) + (x, y)`` (B, 2, H, W) and raw sigma
        (B, S, H, W) of the first decoder's output."""
        h, w = emb_preds.shape[-2:]
        coords = self.coords(h, w, emb_preds.device)
        return emb_preds[:, :2].tanh() + coords, emb_preds[:, 2:]

    def loss_by_feat(self, emb_preds: Tensor, seed_preds: Tensor,
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict], **kwargs) -> dict:
        """The three SpatialEmbeddings losses.

        Args:
            emb_preds (Tensor): (B, 2 + S, H, W).
            seed_preds (Tensor): Seed logits, (B, C, H, W).
            batch_gt_instances (list[InstanceData]): ``masks`` (padded to
                the batch input) and ``labels`` of each image.
            batch_img_metas (list[dict]): Image metas.

        Returns:
            dict[str, Tensor]: ``loss_inst``, ``loss_var``, ``loss_seed``.
        """
        h, w = emb_preds.shape[-2:]
        gt_masks, gt_labels = [], []
        for gt in batch_gt_instances:
            masks = gt.masks.to_tensor(
                dtype=torch.bool, device=emb_preds.device)[:, :h, :w]
            masks = F.pad(masks, (0, w - masks.shape[-1], 0,
                                  h - masks.shape[-2]))
            # A mask cropped away entirely has no centre to learn.
            keep = masks.flatten(1).any(1)
            gt_masks.append(masks[keep])
            gt_labels.append(gt.labels[keep].long())
        embeddings, sigmas = self.decode(emb_preds)
        return self.loss_mask(embeddings, sigmas, seed_preds.sigmoid(),
                              gt_masks, gt_labels,
                              self.coords(h, w, emb_preds.device))

    def predict_by_feat(self,
                        emb_preds: Tensor,
                        seed_preds: Tensor,
                        batch_img_metas: List[dict],
                        rescale: bool = False,
                        **kwargs) -> InstanceList:
        """Instances of each image by greedy clustering per class.

        Args:
            emb_preds (Tensor): (B, 2 + S, H, W).
            seed_preds (Tensor): Seed logits, (B, C, H, W).
            batch_img_metas (list[dict]): Image metas.
            rescale (bool): Masks and boxes at ``ori_shape`` if True, else
                at ``img_shape``.

        Returns:
            list[InstanceData]: ``scores`` (K,), ``labels`` (K,), ``masks``
            (K, h, w) bool and ``bboxes`` (K, 4) of each image.
        """
        embeddings, sigmas = self.decode(emb_preds)
        return [
            self._predict_by_feat_single(emb, sigma, seed_logits, img_meta,
                                         rescale)
            for emb, sigma, seed_logits, img_meta in zip(
                embeddings, sigmas, seed_preds, batch_img_metas)
        ]

    def _predict_by_feat_single(self, embeddings: Tensor, sigma: Tensor,
                                seed_logits: Tensor, img_meta: dict,
                                rescale: bool = False) -> InstanceData:
        """Instances of one image.

        Args:
            embeddings (Tensor): (2, H, W).
            sigma (Tensor): (S, H, W).
            seed_logits (Tensor): (C, H, W).
            img_meta (dict): Its meta.
            rescale (bool): See :meth:`predict_by_feat`.

        Returns:
            InstanceData: See :meth:`predict_by_feat`.
        """
        cfg = self.test_cfg
        img_h, img_w = img_meta['img_shape'][:2]
        embeddings = embeddings[:, :img_h, :img_w].float()
        sigma = sigma[:, :img_h, :img_w].float()
        seeds = seed_logits[:, :img_h, :img_w].float().sigmoid()
        bandwidths = torch.exp(self.sigma_scale * sigma).flatten(1)
        # Pixels with a non-finite output take part in nothing.
        finite = (torch.isfinite(embeddings).all(0)
                  & torch.isfinite(bandwidths.view(sigma.shape)).all(0))
        embeddings = embeddings.flatten(1)
        masks, scores, labels = [], [], []
        for label, seed in enumerate(seeds.flatten(1)):
            fg = ((seed > cfg.fg_thr) & finite.flatten()).nonzero()[:, 0]
            fg_masks, fg_scores = greedy_cluster(
                embeddings[:, fg], bandwidths[:, fg], seed[fg], cfg.seed_thr,
                cfg.mask_thr, cfg.min_pixels, cfg.min_unclaimed,
                cfg.max_centres)
            full = fg_masks.new_zeros((len(fg_masks), img_h * img_w))
            full[:, fg] = fg_masks
            masks.append(full.view(-1, img_h, img_w))
            scores.append(fg_scores)
            labels.append(torch.full_like(fg_scores, label, dtype=torch.long))
        scores = torch.cat(scores)
        keep = scores.argsort(descending=True)[:cfg.max_per_img]
        masks = torch.cat(masks)[keep]
        if rescale and len(masks):
            masks = F.interpolate(
                masks[None].float(), size=img_meta['ori_shape'][:2],
                mode='bilinear', align_corners=False)[0] > 0.5
        elif rescale:
            masks = masks.new_zeros((0, *img_meta['ori_shape'][:2]))
        results = InstanceData()
        results.masks = masks
        results.scores = scores[keep]
        results.labels = torch.cat(labels)[keep]
        results.bboxes = masks_to_boxes(masks)
        return results
