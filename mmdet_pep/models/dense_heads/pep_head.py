"""PEP head: semantics perceiving, mask learning, and the glue to the
excavator and purifier.

Shape shorthand: B images, L pyramid levels, S_l grid size of level l,
C foreground classes, D descriptor channels (= channels of the general
feature B), h x w mask-feature size (stride 4), G GT instances of an image,
P positive grid cells, N descriptors of an image.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.config import ConfigDict
from mmengine.model import bias_init_with_prob, initialize
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.models.dense_heads.solov2_head import MaskFeatModule
from mmdet.models.layers import mask_matrix_nms
from mmdet.models.utils import generate_coordinate, multi_apply
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, MultiConfig, OptConfigType

from ..utils import coord_grid, masks_to_boxes


@MODELS.register_module()
class PEPHead(BaseMaskHead):
    """Semantics perceiving and mask learning head of `Perceive, Excavate
    and Purify: A Novel Object Mining Framework for Instance Segmentation
    <https://arxiv.org/abs/2304.08826>`_ (§3.2, §3.5, Eq. 1-2, 6-8).

    **Semantics perceiving** (§3.2). Per level a tower of ``stacked_convs``
    3x3 convs predicts a semantic map over C+1 classes (background last,
    mmdet's convention) trained with softmax cross-entropy (Eq. 1-2).
    The paper does not say how instances map to levels or which pixels are
    positive; we use SOLO's rule because it is proven for exactly this kind
    of per-location instance representation: level ``l`` takes instances
    whose sqrt(box area) lies in ``scale_ranges[l]``, its map is an
    ``S_l x S_l`` grid over the image, and the positive cells of an
    instance are those of its centre of mass, within ``pos_scale`` of the
    box half-size and at most one cell away. Where two instances claim a
    cell the smaller one wins, so small objects in crowds keep their cells.

    **Instance descriptors** ``D_s``: a second tower on the level features
    with CoordConv input predicts a D-d descriptor per cell; it has no loss
    of its own and is supervised through the mask loss. **Original
    descriptors** are cells whose category confidence is a local maximum
    (point NMS) above ``test_cfg.score_thr``, at most ``test_cfg.nms_pre``.

    **Mask learning** (§3.5): the general feature B (stride 4, fused from the
    pyramid by SOLOv2's :class:`MaskFeatModule`) and ``M = I (x) B``, a 1x1
    dynamic convolution per descriptor (Eq. 6), trained with ``loss_mask``
    on every descriptor, original and mined (Eq. 7).

    ``excavator=None`` removes object excavating and ``purifier=None``
    removes instance purifying; without a purifier duplicates are removed
    with mmdet's Matrix NMS (``test_cfg.kernel/sigma/filter_thr``). Both off
    is the paper's "Baseline" (Tab. 2).

    Args:
        num_classes (int): Number of foreground classes C.
        in_channels (int): Channels of the FPN features.
        feat_channels (int): Channels of the perceiving/descriptor towers.
        stacked_convs (int): Convs per tower (paper: four).
        strides (Sequence[int]): Stride of each level after
            :meth:`resize_feats` (SOLO's resampling of P2 and P6).
        scale_ranges (Sequence[tuple]): sqrt(area) range of each level.
        pos_scale (float): Centre-region scale of positive cells.
        num_grids (Sequence[int]): Grid size S_l of each level.
        mask_feature_head (dict): Config of the general-feature branch B;
            its ``out_channels`` is the descriptor size D (paper: 256).
        excavator (dict, optional): Config of :class:`PEPExcavator`.
        purifier (dict, optional): Config of :class:`PEPPurifier`.
        loss_perceive (dict): Loss of the semantic maps (Eq. 1). The paper's
            softmax CE over C+1 classes (``use_sigmoid=False``, the
            default), averaged over all cells; or, with ``use_sigmoid=True``
            (e.g. ``dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
            alpha=0.25, loss_weight=1.0)``), SOLOv2's perceiving loss: C
            sigmoid maps, background none of them, summed and divided by
            the number of positive cells + 1. A real fork (issue #13): the
            paper's mean over ~1k mostly-background cells per image gives
            the few positive cells little weight, the normalised focal loss
            is what the Baseline's peer SOLOv2 trains with.
        rel_coords (str, optional): Relative-coordinate channels appended
            to B per descriptor (issue #13), so that Eq. 6 stays one 1x1
            dynamic conv, now over ``[B, R_n]``: ``None`` (the paper),
            ``'linear'`` (CondInst's two channels ``rx, ry``) or
            ``'quadratic'`` (``rx, ry, rx^2, ry^2, rx*ry``). ``r`` is the
            offset of every pixel from the descriptor's cell (an original)
            or key pixel (a mined one), in units of the largest object size
            of the descriptor's level (``scale_ranges[l][1]``; mined ones
            count as level 0), as CondInst divides by its sizes of
            interest. The descriptor then has ``D + 2`` or ``D + 5``
            channels, the last ones the weights of ``R_n``. Why: touching
            look-alike objects have near-identical appearance, so ``I (x) B``
            alone cannot tell which of them a descriptor means; with
            CondInst's linear channels a single linear conv can only add a
            half-plane ramp, whereas the quadratic ones let the kernel add
            an elliptical log-prior around its own position (the spatial
            prior SpatialEmbeddings relies on), still one linear 1x1 conv.
        loss_mask (dict): Mask loss (Eq. 7). The paper's CE is
            ``dict(type='CrossEntropyLoss', use_sigmoid=True)``;
            ``dict(type='DiceLoss', use_sigmoid=True)`` is the alternative.
        max_originals_train (int): Original descriptors per image that are
            excavated in training (one per GT instance, its centre cell).
        detach_excavation (bool): Train the excavator on top of the base
            network instead of through it (issue #13). False (the paper's
            end-to-end training): L_E, L_PE and the mined descriptors' mask
            loss all backpropagate into B, the descriptor tower and the
            backbone, and the mined masks share the mean of L_M with the
            originals'. True: the excavator sees B and the original
            descriptors detached, the mined masks are computed over a
            detached B and averaged apart (``loss_mask_mined``, the same
            ``loss_mask``), so the base network is trained by exactly the
            Baseline's losses (plus the purifier's on the originals,
            unless ``detach_purifier``) and
            mining trains only the excavator. A real fork: the paper trains
            end to end, but measured at 600 iterations on the synthetic
            crowds (docs/pep_accuracy.md) the end-to-end excavator costs the
            base network 0.6-2.0 mask AP (its checkpoints evaluated without
            the excavator) while its key-pixel classifier stays near chance,
            so its gradient into the shared features is mostly noise.
        detach_purifier (bool): Train the purifier on top of the base
            network instead of through it (issue #13). False (the paper's
            end-to-end training): the graph loss L_M of Eq. 5 backpropagates
            through the descriptors into the descriptor tower and the
            backbone. True: the purifier sees the descriptors detached, so
            L_M trains only its own projection; with ``detach_excavation``
            too the base network is trained by exactly the Baseline's
            losses. A real fork: with the excavator detached, L_M is the
            only loss besides the Baseline's reaching the base network, so
            this makes PEP's base network exactly a Baseline (tested as one,
            its checkpoints score the Baseline's mask AP), and the two
            mechanisms are measured on top of it (docs/pep_accuracy.md
            section 7: the end-to-end L_M was not what kept PEP's base
            network behind the Baseline on the dense variant; the initial
            weights' draw was).
        norm_cfg (dict): Norm of the towers.
        train_cfg (dict, optional): Unused, kept for the mmdet interface.
        test_cfg (dict, optional): ``nms_pre``, ``score_thr``, ``mask_thr``,
            ``max_per_img``; ``min_area`` (see :meth:`_node_masks`);
            ``excavate=dict(max_originals, key_thr, max_keys)``;
            ``purify=dict(group_thr, class_agnostic, matrix_nms,
            mask_iou_thr, rescore)`` (see :meth:`_purify`); and Matrix NMS
            keys ``kernel``, ``sigma``, ``filter_thr`` used without a
            purifier.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        strides: Sequence[int] = (8, 8, 16, 32, 32),
        scale_ranges: Sequence[tuple] = ((1, 96), (48, 192), (96, 384),
                                         (192, 768), (384, 2048)),
        pos_scale: float = 0.2,
        num_grids: Sequence[int] = (40, 36, 24, 16, 12),
        mask_feature_head: ConfigType = dict(
            feat_channels=128,
            start_level=0,
            end_level=3,
            out_channels=256,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        excavator: OptConfigType = dict(type='PEPExcavator'),
        purifier: OptConfigType = dict(type='PEPPurifier'),
        loss_perceive: ConfigType = dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_mask: ConfigType = dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        rel_coords: Optional[str] = None,
        max_originals_train: int = 16,
        detach_excavation: bool = False,
        detach_purifier: bool = False,
        norm_cfg: ConfigType = dict(
            type='GN', num_groups=32, requires_grad=True),
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        init_cfg: MultiConfig = dict(type='Normal', layer='Conv2d', std=0.01)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if not len(strides) == len(scale_ranges) == len(num_grids):
            raise ValueError(
                'strides, scale_ranges and num_grids need one entry per '
                f'level, got {len(strides)}, {len(scale_ranges)} and '
                f'{len(num_grids)}')
        if max_originals_train < 1:
            raise ValueError('max_originals_train must be >= 1, got '
                             f'{max_originals_train}')
        if rel_coords not in self.REL_COORD_CHANNELS:
            raise ValueError(
                'rel_coords must be one of '
                f'{list(self.REL_COORD_CHANNELS)}, got {rel_coords!r}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if not 0 <= pos_scale <= 1:
            raise ValueError(f'pos_scale must be in [0, 1], got {pos_scale}')
        if any(not 0 <= lo < hi for lo, hi in scale_ranges):
            raise ValueError('scale_ranges must be (low, high) pairs with '
                             f'0 <= low < high, got {tuple(scale_ranges)}')
        if min(num_grids) < 1:
            raise ValueError(f'num_grids must be >= 1, got {list(num_grids)}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = tuple(strides)
        self.scale_ranges = tuple(tuple(r) for r in scale_ranges)
        self.pos_scale = pos_scale
        self.num_grids = tuple(num_grids)
        self.num_levels = len(strides)
        # Level, row and column of every cell of all levels, in the flat
        # order of the targets: (3, sum S^2).
        self.register_buffer(
            'cell_index',
            torch.cat([
                torch.stack([
                    torch.full((s * s, ), lvl),
                    torch.arange(s).repeat_interleave(s),
                    torch.arange(s).repeat(s)
                ]) for lvl, s in enumerate(self.num_grids)
            ], 1),
            persistent=False)
        self.max_originals_train = max_originals_train
        self.detach_excavation = detach_excavation
        self.detach_purifier = detach_purifier
        self.norm_cfg = norm_cfg
        self.train_cfg = train_cfg
        self.test_cfg = self._check_test_cfg(test_cfg)

        mask_feature_head = dict(mask_feature_head)
        mask_feature_head['in_channels'] = in_channels
        self.mask_feature_head = MaskFeatModule(**mask_feature_head)
        self.mask_stride = self.mask_feature_head.mask_stride
        self.rel_coords = rel_coords
        # D kernel weights over B, then the weights of the relative
        # coordinates.
        self.desc_channels = (
            self.mask_feature_head.out_channels +
            self.REL_COORD_CHANNELS[rel_coords])
        # Largest object size (px) of each level: the unit of the relative
        # coordinates of its descriptors.
        self.register_buffer(
            'level_scales',
            torch.tensor([float(hi) for _, hi in self.scale_ranges]),
            persistent=False)

        self.loss_perceive = MODELS.build(loss_perceive)
        self.perceive_sigmoid = bool(loss_perceive.get('use_sigmoid', False))
        # Channels of the semantic map: C (sigmoid) or C + 1 (softmax, the
        # background last).
        self.cls_out_channels = num_classes + (0 if self.perceive_sigmoid
                                               else 1)
        self.loss_mask = MODELS.build(loss_mask)
        self._init_layers()

        # The mechanisms draw their initial weights from a fork of the
        # random state (here and in :meth:`init_weights`), so that a seed
        # gives PEP the Baseline's initial base network, backbone and neck:
        # with ``detach_excavation`` and ``detach_purifier`` it then trains
        # exactly as the Baseline's, and an ablation at one seed differs by
        # the mechanisms alone, not by another random draw.
        with torch.random.fork_rng(devices=[]):
            if excavator is not None:
                excavator = dict(excavator)
                excavator.setdefault('num_classes', num_classes)
                excavator.setdefault('in_channels',
                                     self.mask_feature_head.out_channels)
                excavator.setdefault('desc_channels', self.desc_channels)
                self.excavator = MODELS.build(excavator)
            else:
                self.excavator = None
            if purifier is not None:
                purifier = dict(purifier)
                purifier.setdefault('in_channels', self.desc_channels)
                self.purifier = MODELS.build(purifier)
            else:
                self.purifier = None

    # Channels of R_n for each ``rel_coords`` choice.
    REL_COORD_CHANNELS = {None: 0, 'linear': 2, 'quadratic': 5}

    # The one declaration of every test_cfg key and its default.
    TEST_CFG_DEFAULTS = dict(
        nms_pre=500,
        score_thr=0.1,
        mask_thr=0.5,
        max_per_img=100,
        # SOLOv2's filter: a node's mask needs more pixels than its level's
        # stride; an int >= 0 is a fixed minimum (0: any non-empty mask).
        min_area='stride',
        # Matrix NMS (the Baseline's duplicate removal, or after purifying
        # with purify.matrix_nms=True).
        kernel='gaussian',
        sigma=2.0,
        filter_thr=0.05,
        excavate=dict(max_originals=30, key_thr=0.3, max_keys=4),
        purify=dict(
            group_thr=0.5,
            class_agnostic=False,
            matrix_nms=False,
            mask_iou_thr=0.0,
            rescore=False))

    @classmethod
    def _check_test_cfg(cls, test_cfg: OptConfigType) -> ConfigDict:
        """Fill defaults and reject misspelt keys and values that would
        silently yield nonsense, at build time rather than after training."""
        given = dict(test_cfg or {})
        parts = [('test_cfg', given, cls.TEST_CFG_DEFAULTS)]
        filled = {**cls.TEST_CFG_DEFAULTS, **given}
        for name in ('excavate', 'purify'):
            part = dict(given.get(name) or {})
            parts.append((f'test_cfg.{name}', part,
                          cls.TEST_CFG_DEFAULTS[name]))
            filled[name] = {**cls.TEST_CFG_DEFAULTS[name], **part}
        for where, part, defaults in parts:
            unknown = sorted(set(part) - set(defaults))
            if unknown:
                raise ValueError(f'unknown keys {unknown} in {where}; '
                                 f'valid keys are {list(defaults)}')
        cfg = ConfigDict(filled)
        if cfg.kernel not in ('gaussian', 'linear'):
            raise ValueError("test_cfg.kernel must be 'gaussian' or 'linear', "
                             f'got {cfg.kernel!r}')
        if cfg.sigma <= 0:
            raise ValueError(f'test_cfg.sigma must be > 0, got {cfg.sigma}')
        if cfg.min_area != 'stride' and (
                isinstance(cfg.min_area, (bool, str))
                or not isinstance(cfg.min_area, (int, float))
                or cfg.min_area < 0):
            raise ValueError("test_cfg.min_area must be 'stride' or a number "
                             f'of mask pixels >= 0, got {cfg.min_area!r}')
        for where, value in (('filter_thr', cfg.filter_thr),
                             ('score_thr', cfg.score_thr),
                             ('mask_thr', cfg.mask_thr),
                             ('excavate.key_thr', cfg.excavate.key_thr),
                             ('purify.group_thr', cfg.purify.group_thr),
                             ('purify.mask_iou_thr',
                              cfg.purify.mask_iou_thr)):
            if not 0 <= value <= 1:
                raise ValueError(
                    f'test_cfg.{where} must be in [0, 1], got {value}')
        for where, value in (('nms_pre', cfg.nms_pre),
                             ('max_per_img', cfg.max_per_img),
                             ('excavate.max_originals',
                              cfg.excavate.max_originals),
                             ('excavate.max_keys', cfg.excavate.max_keys)):
            if value < 1:
                raise ValueError(f'test_cfg.{where} must be >= 1, got {value}')
        return cfg

    def _init_layers(self) -> None:
        """Initialize the perceiving and descriptor towers (their convs have
        a bias only without a norm: ConvModule's ``bias='auto'``)."""
        self.cls_convs = nn.ModuleList()
        self.desc_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels if i == 0 else self.feat_channels
            self.cls_convs.append(
                ConvModule(
                    chn,
                    self.feat_channels,
                    3,
                    padding=1,
                    norm_cfg=self.norm_cfg))
            chn = self.in_channels + 2 if i == 0 else self.feat_channels
            self.desc_convs.append(
                ConvModule(
                    chn,
                    self.feat_channels,
                    3,
                    padding=1,
                    norm_cfg=self.norm_cfg))
        self.conv_cls = nn.Conv2d(
            self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_desc = nn.Conv2d(
            self.feat_channels, self.desc_channels, 3, padding=1)

    def init_weights(self) -> None:
        """Start the semantic maps at p_fg ~ 0.01: softmax, the background
        logit at 4.6 (the Normal init leaves the foreground biases at 0);
        sigmoid, every class's bias at the focal prior."""
        # The base network first, as the Baseline's (without the mechanisms),
        # then the mechanisms from a fork of the random state: the head's
        # init_cfg and then their own.
        mechanisms = {
            name: self._modules.pop(name)
            for name in ('excavator', 'purifier')
            if self._modules.get(name) is not None
        }
        try:
            super().init_weights()
        finally:
            self._modules.update(mechanisms)
        with torch.random.fork_rng(devices=[]):
            for module in mechanisms.values():
                if self.init_cfg:
                    initialize(module, self.init_cfg)
                module.init_weights()
        if self.perceive_sigmoid:
            nn.init.constant_(self.conv_cls.bias, bias_init_with_prob(0.01))
        else:
            nn.init.constant_(self.conv_cls.bias[-1:], 4.6)

    def resize_feats(self, x: Sequence[Tensor]) -> List[Tensor]:
        """SOLO's resampling: P2 down by 2, the last level up to the one
        before it (strides 4..64 -> 8, 8, 16, 32, 32)."""
        out = list(x)
        out[0] = F.interpolate(x[0], scale_factor=0.5, mode='bilinear')
        out[-1] = F.interpolate(x[-1], size=x[-2].shape[-2:], mode='bilinear')
        return out

    def forward(self, x: Tuple[Tensor]) -> tuple:
        """Forward the FPN features.

        Args:
            x (tuple[Tensor]): FPN features, L levels, each (B, C_in, H, W).

        Returns:
            tuple:

            - mlvl_desc_preds (list[Tensor]): Descriptors, each level
              (B, D, S_l, S_l).
            - mlvl_cls_preds (list[Tensor]): Semantic logits, each level
              (B, C+1, S_l, S_l), background last (C channels with a
              sigmoid ``loss_perceive``).
            - mask_feats (Tensor): General feature B, (B, D, h, w).
            - exc_feats (Tensor | None): Excavation features
              (B, F, h/2, w/2), None without an excavator.
        """
        if len(x) != self.num_levels:
            raise ValueError(f'PEPHead expects {self.num_levels} feature '
                             f'levels, got {len(x)}')
        mask_feats = self.mask_feature_head(x)
        mlvl_desc_preds, mlvl_cls_preds = [], []
        for i, feat in enumerate(self.resize_feats(x)):
            feat = F.interpolate(
                feat, size=self.num_grids[i], mode='bilinear')
            desc_feat = torch.cat(
                [feat, generate_coordinate(feat.size(), feat.device)], 1)
            for conv in self.desc_convs:
                desc_feat = conv(desc_feat)
            cls_feat = feat
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            mlvl_desc_preds.append(self.conv_desc(desc_feat))
            mlvl_cls_preds.append(self.conv_cls(cls_feat))
        exc_feats = None
        if self.excavator is not None:
            exc_feats = self.excavator(
                mask_feats.detach() if self.detach_excavation else mask_feats)
        return mlvl_desc_preds, mlvl_cls_preds, mask_feats, exc_feats

    def _cell_xy(self) -> Tensor:
        """Normalised centre of every grid cell of all levels, (sum S^2, 2)."""
        return torch.cat([
            coord_grid(s, s, torch.device('cpu')).flatten(1).t()
            for s in self.num_grids
        ])

    def _get_targets_single(self, gt_instances: InstanceData,
                            img_meta: dict, mask_size: Tuple[int,
                                                             int]) -> tuple:
        """Perceiving targets of one image.

        Args:
            gt_instances (:obj:`InstanceData`): ``labels`` (G,), ``masks``
                (BitmapMasks padded to the batch input) and, optionally,
                ``bboxes`` (G, 4).
            img_meta (dict): Meta information of the image.
            mask_size (tuple[int, int]): (h, w) of the mask features.

        Built from GT tensors only, so no autograd graph is recorded (and no
        ``torch.no_grad`` decorator hides this function from mutation
        testing).

        Returns:
            tuple:

            - labels (Tensor): Class of each cell of all levels,
              (sum S^2,), background = ``num_classes``.
            - pos_gt_inds (Tensor): GT index of each cell, -1 if negative,
              (sum S^2,).
            - center_cells (Tensor): Flat cell index of each GT's centre
              cell on its level(s), -1 if unassigned, (G, L).
            - gt_masks (Tensor): Masks at mask-feature size, (G, h, w).
            - gt_boxes (Tensor): (G, 4) in padded-input pixels.
            - gt_centers (Tensor): Centres of mass (x, y), (G, 2).
        """
        device = gt_instances.labels.device
        gt_labels = gt_instances.labels
        num_gts = gt_labels.numel()
        pad_h, pad_w = img_meta['batch_input_shape']
        masks = gt_instances.masks.to_tensor(dtype=torch.float32,
                                             device=device)
        masks = masks[:, :pad_h, :pad_w]
        if masks.shape[-2:] != (pad_h, pad_w):
            masks = F.pad(masks, (0, pad_w - masks.shape[-1], 0,
                                  pad_h - masks.shape[-2]))
        areas = masks.sum((1, 2))
        ys = torch.arange(pad_h, device=device, dtype=torch.float32)
        xs = torch.arange(pad_w, device=device, dtype=torch.float32)
        denom = areas.clamp(min=1)
        # +0.5: centre of mass of pixel centres, in pixel-edge coordinates.
        cy = (masks.sum(2) * ys).sum(1) / denom + 0.5
        cx = (masks.sum(1) * xs).sum(1) / denom + 0.5
        gt_centers = torch.stack([cx, cy], dim=1)
        gt_boxes = masks_to_boxes(masks > 0)
        sizes = torch.sqrt((gt_boxes[:, 2] - gt_boxes[:, 0]) *
                           (gt_boxes[:, 3] - gt_boxes[:, 1]))

        h, w = mask_size
        s = self.mask_stride
        # Area-based downsampling: a cell is foreground if >= half covered.
        pooled = F.pad(masks, (0, max(w * s - pad_w, 0), 0,
                               max(h * s - pad_h, 0)))[:, :h * s, :w * s]
        gt_masks = (F.avg_pool2d(pooled[None], s)[0] >= 0.5).float() \
            if num_gts else masks.new_zeros((0, h, w))

        labels, pos_gt_inds, center_cells = self._assign_cells(
            gt_labels, gt_boxes, gt_centers, sizes, areas > 0,
            (pad_h, pad_w))
        # A centre cell taken over by a smaller instance is not an original.
        offsets = torch.tensor([0] + [g * g for g in self.num_grids[:-1]],
                               device=device).cumsum(0)
        flat = center_cells + offsets[None]
        owned = pos_gt_inds[flat.clamp(min=0)] == torch.arange(
            num_gts, device=device)[:, None]
        center_cells = torch.where(owned & (center_cells >= 0), flat, -1)
        return (labels, pos_gt_inds, center_cells, gt_masks, gt_boxes,
                gt_centers)

    def _assign_cells(self, gt_labels: Tensor, gt_boxes: Tensor,
                      gt_centers: Tensor, sizes: Tensor, valid: Tensor,
                      pad_shape: Tuple[int, int]) -> tuple:
        """SOLO's cell assignment of one image: all instances, levels and
        cells at once.

        On level ``l`` an instance with ``sizes`` in ``scale_ranges[l]``
        claims the cells of its centre region: the cell of its centre of
        mass ``(ci, cj)``, widened to the cells of the centre +-
        ``pos_scale`` x half its box, at most one cell each way. Where
        regions overlap the smaller instance wins (of equal sizes, the one
        ``argsort`` puts last), as if they were painted largest first.
        Cell indices are computed in float64, as Python floats would; the
        result equals the per-instance loop this replaced (tested).

        Returns:
            tuple: The class of each cell of all levels (sum S^2,),
            background = ``num_classes``; the GT index of each cell
            (sum S^2,), -1 if negative; and the index of each GT's centre
            cell within each level, (G, L), -1 where the level does not
            take it.
        """
        device = gt_labels.device
        num_gts = gt_labels.numel()
        pad_h, pad_w = pad_shape
        level, row, col = self.cell_index.to(device)
        grids = torch.tensor(self.num_grids, device=device)
        ranges = torch.tensor(self.scale_ranges, device=device,
                              dtype=sizes.dtype)

        def cell(v: Tensor, size: int) -> Tensor:  # (G,) -> (G, L)
            scaled = (v[:, None] / size * grids.double()).floor().long()
            return torch.minimum(scaled.clamp(min=0), grids - 1)

        boxes = gt_boxes.double()
        ctr_x, ctr_y = gt_centers.double().unbind(1)
        half_w = 0.5 * (boxes[:, 2] - boxes[:, 0]) * self.pos_scale
        half_h = 0.5 * (boxes[:, 3] - boxes[:, 1]) * self.pos_scale
        ci, cj = cell(ctr_y, pad_h), cell(ctr_x, pad_w)
        top = torch.maximum(cell(ctr_y - half_h, pad_h), ci - 1)[:, level]
        down = torch.minimum(cell(ctr_y + half_h, pad_h), ci + 1)[:, level]
        left = torch.maximum(cell(ctr_x - half_w, pad_w), cj - 1)[:, level]
        right = torch.minimum(cell(ctr_x + half_w, pad_w), cj + 1)[:, level]
        hit = (valid[:, None] & (sizes[:, None] >= ranges[:, 0])
               & (sizes[:, None] <= ranges[:, 1]))  # (G, L)
        cover = (hit[:, level] & (row >= top) & (row <= down)
                 & (col >= left) & (col <= right))  # (G, sum S^2)
        # Paint order: the rank of an instance is its position largest
        # first; a cell goes to the highest rank covering it. -1 (none)
        # indexes the entry appended to ``order``/``labels``.
        order = sizes.argsort(descending=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(num_gts, device=device)
        painter = torch.cat([
            torch.where(cover, rank[:, None], -1),
            cover.new_full((1, cover.size(1)), -1, dtype=torch.long)
        ]).amax(0)
        owner = torch.cat([order, order.new_full((1, ), -1)])[painter]
        labels = torch.cat(
            [gt_labels, gt_labels.new_full((1, ), self.num_classes)])[owner]
        center_cells = torch.where(hit, ci * grids + cj, -1)
        return labels, owner, center_cells

    def loss_by_feat(self, mlvl_desc_preds: List[Tensor],
                     mlvl_cls_preds: List[Tensor], mask_feats: Tensor,
                     exc_feats: Optional[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict], **kwargs) -> dict:
        """Compute the PEP losses (Eq. 8) of a batch.

        Args:
            mlvl_desc_preds (list[Tensor]): Each (B, D, S_l, S_l).
            mlvl_cls_preds (list[Tensor]): Each (B, C+1, S_l, S_l).
            mask_feats (Tensor): (B, D, h, w).
            exc_feats (Tensor | None): (B, F, h/2, w/2).
            batch_gt_instances (list[:obj:`InstanceData`]): GT of each
                image with ``labels`` and ``masks`` (and ``bboxes``).
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            dict[str, Tensor]: ``loss_perceive`` (L_P), ``loss_mask``
            (L_M of Eq. 7), and with an excavator ``loss_excavate`` (L_E)
            and ``loss_excavate_cls`` (L_PE), with a purifier
            ``loss_graph`` (L_M of Eq. 5).
        """
        mask_size = mask_feats.shape[-2:]
        (labels, pos_gt_inds, center_cells, gt_masks, gt_boxes,
         gt_centers) = multi_apply(
             self._get_targets_single,
             batch_gt_instances,
             batch_img_metas,
             mask_size=mask_size)

        flat_cls = torch.cat([
            p.permute(0, 2, 3, 1).reshape(p.size(0), -1,
                                          self.cls_out_channels)
            for p in mlvl_cls_preds
        ], 1)  # (B, sum S^2, C+1 or C)
        flat_desc = torch.cat([
            p.permute(0, 2, 3, 1).reshape(p.size(0), -1, self.desc_channels)
            for p in mlvl_desc_preds
        ], 1)  # (B, sum S^2, D)
        labels = torch.cat(labels)
        if self.perceive_sigmoid:
            num_pos = int((labels < self.num_classes).sum())
            loss_perceive = self.loss_perceive(
                flat_cls.reshape(-1, self.cls_out_channels),
                labels,
                avg_factor=num_pos + 1)
        else:
            loss_perceive = self.loss_perceive(
                flat_cls.reshape(-1, self.cls_out_channels), labels)

        cell_xy = self._cell_xy().to(mask_feats.device)
        cell_scale = self.level_scales[self.cell_index[0]]
        # Nodes of each image: its positive cells (originals), then the
        # descriptors mined around its centre cells.
        batch_desc, batch_xy, batch_scale, batch_inds = [], [], [], []
        for i in range(len(batch_img_metas)):
            pos = (pos_gt_inds[i] >= 0).nonzero(as_tuple=True)[0]
            batch_desc.append(flat_desc[i, pos])
            batch_xy.append(cell_xy[pos])
            batch_scale.append(cell_scale[pos])
            batch_inds.append(pos_gt_inds[i][pos])
        # With ``detach_excavation`` the first ``num_ori[i]`` nodes (the
        # originals) train the base network and the mined ones only the
        # excavator; otherwise all share one mask loss.
        num_ori = [len(desc) for desc in batch_desc]
        exc_losses = {}
        if self.excavator is not None:
            exc_losses, batch_mined = self._excavate_train(
                flat_desc.detach() if self.detach_excavation else flat_desc,
                cell_xy, pos_gt_inds, center_cells, gt_boxes, gt_centers,
                gt_masks, exc_feats, batch_gt_instances, batch_img_metas)
            for i, mined in enumerate(batch_mined):
                if mined is not None:
                    batch_desc[i] = torch.cat(
                        [batch_desc[i], mined['descriptors']])
                    batch_xy[i] = torch.cat([batch_xy[i], mined['xy']])
                    batch_scale[i] = torch.cat([
                        batch_scale[i],
                        self.level_scales[:1].expand(len(mined['xy']))
                    ])
                    batch_inds[i] = torch.cat(
                        [batch_inds[i], mined['gt_inds']])

        # Eq. 6-7: every node's mask is its 1x1 dynamic conv over B.
        split = self.detach_excavation and self.excavator is not None
        mask_preds, mask_targets, mined_preds, mined_targets = [], [], [], []
        for i, (desc, xy, scale, inds) in enumerate(
                zip(batch_desc, batch_xy, batch_scale, batch_inds)):
            n = num_ori[i] if split else len(desc)
            if n:
                mask_preds.append(
                    self._dynamic_masks(desc[:n], xy[:n], scale[:n],
                                        mask_feats[i]))
                mask_targets.append(gt_masks[i][inds[:n]])
            if n < len(desc):
                mined_preds.append(
                    self._dynamic_masks(desc[n:], xy[n:], scale[n:],
                                        mask_feats[i].detach()))
                mined_targets.append(gt_masks[i][inds[n:]])
        if mask_preds:
            loss_mask = self.loss_mask(
                torch.cat(mask_preds), torch.cat(mask_targets))
        else:
            # An exact zero that still touches every parameter, so the
            # graph (and DDP) stays whole.
            loss_mask = (mask_feats.sum() + flat_desc.sum()) * 0
        losses = dict(loss_perceive=loss_perceive, loss_mask=loss_mask)
        if split:
            # Without mined nodes an exact zero: the excavator's own losses
            # already touch all of its parameters.
            losses['loss_mask_mined'] = (
                self.loss_mask(
                    torch.cat(mined_preds), torch.cat(mined_targets))
                if mined_preds else mask_feats.new_zeros(()))
        losses.update(exc_losses)
        if self.purifier is not None:
            if self.detach_purifier:
                batch_desc = [desc.detach() for desc in batch_desc]
            losses.update(
                self.purifier.loss(batch_desc, batch_xy, batch_inds))
        return losses

    def _dynamic_masks(self, desc: Tensor, xy: Tensor, scale: Tensor,
                       mask_feats: Tensor) -> Tensor:
        """Eq. 6: the mask logits of N descriptors, each a 1x1 dynamic
        conv over B and, with ``rel_coords``, over its own relative
        coordinates (see the class docstring).

        The coordinate channels depend on x or y alone (or on their
        product), so they are added as broadcast rows and columns, never
        materialised as an (N, K, h, w) input.

        Args:
            desc (Tensor): Descriptors, (N, D) or (N, D + K).
            xy (Tensor): Their positions in the [-1, 1] frame, (N, 2).
            scale (Tensor): Their unit of relative coordinates in pixels,
                (N,).
            mask_feats (Tensor): General feature B of the image, (D, h, w).

        Returns:
            Tensor: Mask logits, (N, h, w).
        """
        dim, h, w = mask_feats.shape
        logits = torch.einsum('nd,dhw->nhw', desc[:, :dim], mask_feats)
        if self.rel_coords is None:
            return logits
        weights = desc[:, dim:].to(logits.dtype)
        xs, ys = (coord_grid(1, w, mask_feats.device)[0, 0],
                  coord_grid(h, 1, mask_feats.device)[1, :, 0])
        # Normalised offsets -> pixels of the padded input -> level units.
        unit = scale.to(xy.dtype)[:, None]
        rx = ((xs[None] - xy[:, :1]) * (w * self.mask_stride / 2) /
              unit).to(logits.dtype)  # (N, w)
        ry = ((ys[None] - xy[:, 1:]) * (h * self.mask_stride / 2) /
              unit).to(logits.dtype)  # (N, h)
        col = weights[:, :1] * rx
        row = weights[:, 1:2] * ry
        if self.rel_coords == 'quadratic':
            col = col + weights[:, 2:3] * rx.square()
            row = row + weights[:, 3:4] * ry.square()
        logits = logits + col[:, None, :] + row[:, :, None]
        if self.rel_coords == 'quadratic':
            logits = logits + (weights[:, 4:5, None] * ry[:, :, None] *
                               rx[:, None, :])
        return logits

    def _excavate_train(self, flat_desc: Tensor, cell_xy: Tensor,
                        pos_gt_inds: List[Tensor], center_cells: List[Tensor],
                        gt_boxes: List[Tensor], gt_centers: List[Tensor],
                        gt_masks: List[Tensor], exc_feats: Tensor,
                        batch_gt_instances: InstanceList,
                        batch_img_metas: List[dict]) -> tuple:
        """Excavate around at most ``max_originals_train`` GT centre cells
        per image (chosen at random) and return the excavator's finished
        losses and the mined descriptors of each image (see
        :meth:`PEPExcavator.loss`)."""
        batch_originals = []
        for i in range(len(batch_img_metas)):
            ori = center_cells[i][center_cells[i] >= 0]
            ori = ori[torch.randperm(
                ori.numel(), device=ori.device)[:self.max_originals_train]]
            batch_originals.append(
                dict(
                    descriptors=flat_desc[i, ori],
                    xy=cell_xy[ori],
                    gt_inds=pos_gt_inds[i][ori],
                    key_sampler=self._key_sampler(flat_desc[i],
                                                  self.cell_index[0, ori])))
        batch_gt = [
            dict(boxes=boxes, centers=centers, labels=gt.labels, masks=masks)
            for boxes, centers, gt, masks in zip(gt_boxes, gt_centers,
                                                 batch_gt_instances, gt_masks)
        ]
        return self.excavator.loss(exc_feats, batch_originals, batch_gt,
                                   batch_img_metas[0]['batch_input_shape'])

    def _key_sampler(self, desc_preds: Tensor, levels: Tensor) -> Callable:
        """For ``PEPExcavator(key_features='descriptor')``: a function of
        ``(key_ori (K,), key_xy (K, 2))`` giving the predicted descriptor
        (K, D) of the cell that holds each key pixel on the grid of the
        level of its original (``levels`` (N,)): crowded look-alikes share
        a size, so a neighbour's cell is sought on its original's level.

        Args:
            desc_preds (Tensor): Descriptors of all cells of one image,
                (sum S^2, D).
            levels (Tensor): Level of each original, (N,).
        """
        grids = levels.new_tensor(self.num_grids)
        offsets = torch.cumsum(grids.square(), 0) - grids.square()

        def sample(key_ori: Tensor, key_xy: Tensor) -> Tensor:
            lvl = levels[key_ori]
            size = grids[lvl]
            # The [-1, 1] frame -> the column and row of an S x S grid.
            col, row = (((key_xy + 1) / 2 * size[:, None]).long().clamp(
                min=0).minimum(size[:, None] - 1)).unbind(1)
            return desc_preds[offsets[lvl] + row * size + col]

        return sample

    def predict_by_feat(self, mlvl_desc_preds: List[Tensor],
                        mlvl_cls_preds: List[Tensor], mask_feats: Tensor,
                        exc_feats: Optional[Tensor],
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        **kwargs) -> InstanceList:
        """Turn head outputs into instance masks.

        Args:
            mlvl_desc_preds (list[Tensor]): Each (B, D, S_l, S_l).
            mlvl_cls_preds (list[Tensor]): Each (B, C+1, S_l, S_l).
            mask_feats (Tensor): (B, D, h, w).
            exc_feats (Tensor | None): (B, F, h/2, w/2).
            batch_img_metas (list[dict]): Meta information of each image.
            rescale (bool): Return masks at ``ori_shape`` if True, else at
                ``img_shape``.

        Returns:
            list[:obj:`InstanceData`]: Per image ``scores`` (N,),
            ``labels`` (N,), ``masks`` (N, H, W) bool and ``bboxes`` (N, 4)
            derived from the masks.
        """
        flat_scores, flat_desc, strides = [], [], []
        for lvl, (cls, desc) in enumerate(zip(mlvl_cls_preds,
                                              mlvl_desc_preds)):
            prob = (cls.float().sigmoid() if self.perceive_sigmoid else
                    cls.float().softmax(dim=1)[:, :-1])
            # Point NMS: a cell is an original only at a local maximum.
            hmax = F.max_pool2d(prob, 2, stride=1, padding=1)[..., :-1, :-1]
            prob = prob * (hmax == prob)
            flat_scores.append(prob.flatten(2).transpose(1, 2))
            flat_desc.append(desc.flatten(2).transpose(1, 2))
            strides.append(prob.new_full((prob.shape[-1]**2, ),
                                         self.strides[lvl]))
        flat_scores = torch.cat(flat_scores, 1)  # (B, sum S^2, C)
        flat_desc = torch.cat(flat_desc, 1)  # (B, sum S^2, D)
        strides = torch.cat(strides)
        cell_xy = self._cell_xy().to(mask_feats.device)
        results = []
        for i, img_meta in enumerate(batch_img_metas):
            results.append(
                self._predict_by_feat_single(
                    flat_scores[i], flat_desc[i], mask_feats[i],
                    None if exc_feats is None else exc_feats[i], cell_xy,
                    strides, img_meta, rescale))
        return results

    def _empty_results(self, img_meta: dict, rescale: bool,
                       device: torch.device) -> InstanceData:
        """Results with no instance, of the right types and shapes."""
        h, w = img_meta['ori_shape' if rescale else 'img_shape'][:2]
        results = InstanceData()
        results.scores = torch.zeros(0, device=device)
        results.labels = torch.zeros(0, dtype=torch.long, device=device)
        results.masks = torch.zeros((0, h, w), dtype=torch.bool, device=device)
        results.bboxes = torch.zeros((0, 4), device=device)
        return results

    def _predict_by_feat_single(self,
                                cls_scores: Tensor,
                                desc_preds: Tensor,
                                mask_feats: Tensor,
                                exc_feat: Optional[Tensor],
                                cell_xy: Tensor,
                                strides: Tensor,
                                img_meta: dict,
                                rescale: bool = True,
                                cfg: OptConfigType = None) -> InstanceData:
        """Predict the instances of one image.

        The steps: select the original descriptors, excavate mined ones
        around the best originals, compute and filter their masks, purify
        (or Matrix-NMS) them into instances, and resize the kept masks to
        the image.

        Args:
            cls_scores (Tensor): Point-NMSed class probabilities of all
                cells, (sum S^2, C).
            desc_preds (Tensor): Descriptors of all cells, (sum S^2, D).
            mask_feats (Tensor): General feature B, (D, h, w).
            exc_feat (Tensor | None): Excavation features, (F, h/2, w/2).
            cell_xy (Tensor): Cell centres, (sum S^2, 2).
            strides (Tensor): Stride of each cell's level, (sum S^2,).
            img_meta (dict): Meta information of the image.
            rescale (bool): Masks at ``ori_shape`` if True.
            cfg (dict, optional): Test config, checked and completed with
                the defaults; ``self.test_cfg`` if None.

        Returns:
            :obj:`InstanceData`: See :meth:`predict_by_feat`.
        """
        cfg = self.test_cfg if cfg is None else self._check_test_cfg(cfg)
        nodes = self._select_originals(cls_scores, desc_preds, cell_xy,
                                       strides, cfg)
        if nodes is not None and self.excavator is not None:
            nodes = self._excavate_test(nodes, exc_feat, desc_preds, cfg)
        if nodes is not None:
            nodes = self._node_masks(nodes, mask_feats, cfg)
        if nodes is not None and self.purifier is not None:
            nodes = self._purify(nodes, cfg)
        if nodes is not None and (self.purifier is None
                                  or cfg.purify.matrix_nms):
            nodes = self._matrix_nms(nodes, cfg)
        if nodes is None or len(nodes['scores']) == 0:
            return self._empty_results(img_meta, rescale, mask_feats.device)
        masks = self._resize_masks(nodes['mask_probs'], img_meta, rescale,
                                   cfg.mask_thr)
        results = InstanceData()
        results.masks = masks
        results.labels = nodes['labels']
        results.scores = nodes['scores']
        results.bboxes = masks_to_boxes(masks)
        return results

    def _select_originals(self, cls_scores: Tensor, desc_preds: Tensor,
                          cell_xy: Tensor, strides: Tensor,
                          cfg: ConfigDict) -> Optional[dict]:
        """Original descriptors: (cell, class) pairs above ``score_thr``,
        best first, at most ``nms_pre``; None if there is none.

        Returns:
            dict | None: ``scores``, ``labels``, ``desc``, ``xy``,
            ``stride``, ``level`` and ``scale`` (unit of the relative
            coordinates) of the N originals, (N,), (N,), (N, D), (N, 2),
            (N,), (N,), (N,).
        """
        # Non-finite features must give no detections, never a crash: their
        # probabilities are NaN (GroupNorm of an inf is NaN), NaN becomes 0.
        cls_scores = torch.nan_to_num(cls_scores)
        candidates = (cls_scores > cfg.score_thr).nonzero()
        if candidates.size(0) == 0:
            return None
        scores = cls_scores[candidates[:, 0], candidates[:, 1]]
        # Best first: the excavator mines around the top originals only.
        scores, top = scores.topk(min(cfg.nms_pre, scores.numel()))
        cells, labels = candidates[top, 0], candidates[top, 1]
        return dict(
            scores=scores,
            labels=labels,
            desc=desc_preds[cells],
            xy=cell_xy[cells],
            stride=strides[cells],
            level=self.cell_index[0, cells],
            scale=self.level_scales[self.cell_index[0, cells]])

    def _excavate_test(self, nodes: dict, exc_feat: Tensor,
                       desc_preds: Tensor, cfg: ConfigDict) -> dict:
        """Append the descriptors mined around the best
        ``excavate.max_originals`` originals whose class score (key-pixel
        class x peak confidence) passes ``score_thr``; they count as
        level-0 cells for the area filter."""
        num_ori = min(cfg.excavate.max_originals, nodes['desc'].size(0))
        mined = self.excavator.predict(
            exc_feat,
            nodes['desc'][:num_ori],
            nodes['xy'][:num_ori],
            dict(
                key_thr=cfg.excavate.key_thr,
                max_keys=cfg.excavate.max_keys),
            key_sampler=self._key_sampler(desc_preds,
                                          nodes['level'][:num_ori]))
        mined_scores, mined_labels = mined['scores'].max(dim=1)
        keep = mined_scores > cfg.score_thr
        stride = nodes['stride']
        return dict(
            scores=torch.cat([nodes['scores'], mined_scores[keep]]),
            labels=torch.cat([nodes['labels'], mined_labels[keep]]),
            desc=torch.cat([nodes['desc'], mined['descriptors'][keep]]),
            xy=torch.cat([nodes['xy'], mined['xy'][keep]]),
            stride=torch.cat([
                stride,
                stride.new_full((int(keep.sum()), ), min(self.strides))
            ]),
            scale=torch.cat([
                nodes['scale'],
                self.level_scales[:1].expand(int(keep.sum()))
            ]))

    def _node_masks(self, nodes: dict, mask_feats: Tensor,
                    cfg: ConfigDict) -> Optional[dict]:
        """Masks of all nodes (Eq. 6), without those too small
        (``test_cfg.min_area``) or with a non-finite score; the score
        becomes category confidence x mask quality ("maskness").

        ``min_area='stride'`` is SOLOv2's filter: a node's mask at B's
        resolution (stride 4) needs more pixels than its level's stride,
        8 at the two finest levels, so 128 px of the input. It drops right
        masks of objects of ~10 x 10 px before anything ranks them: on the
        ``dense`` synthetic variant (issue #13, docs/pep_accuracy.md 7.12)
        30 of 230 isolated objects, median area 103 px. A number keeps
        masks of more pixels than it (0: every non-empty mask).

        Returns:
            dict | None: ``scores``, ``cls_scores`` (the category
            confidences alone), ``labels``, ``desc``, ``xy``,
            ``mask_logits`` (N, h, w), ``mask_probs``, ``masks`` and
            ``areas`` of the kept nodes; None if none is kept.
        """
        mask_logits = self._dynamic_masks(nodes['desc'], nodes['xy'],
                                          nodes['scale'], mask_feats)
        mask_probs = mask_logits.sigmoid()
        masks = mask_probs > cfg.mask_thr
        areas = masks.sum((1, 2)).float()
        min_area = (nodes['stride']
                    if cfg.min_area == 'stride' else cfg.min_area)
        keep = (areas > min_area) & torch.isfinite(nodes['scores'])
        if not keep.any():
            return None
        mask_probs, masks, areas = mask_probs[keep], masks[keep], areas[keep]
        cls_scores = nodes['scores'][keep]
        scores = cls_scores * self._maskness(mask_probs, masks, areas)
        return dict(
            scores=torch.nan_to_num(scores),
            cls_scores=cls_scores,
            labels=nodes['labels'][keep],
            desc=nodes['desc'][keep],
            xy=nodes['xy'][keep],
            mask_logits=mask_logits[keep],
            mask_probs=mask_probs,
            masks=masks,
            areas=areas)

    @staticmethod
    def _maskness(mask_probs: Tensor, masks: Tensor, areas: Tensor) -> Tensor:
        """SOLOv2's mask quality: the mean probability inside each binary
        mask, (N,)."""
        return (mask_probs * masks).sum((1, 2)) / areas

    def _group(self, nodes: dict, cfg: ConfigDict) -> Tuple[Tensor, Tensor]:
        """The purifier's groups of the nodes (see
        :meth:`PEPPurifier.group`), links between masks that overlap by
        at most ``purify.mask_iou_thr`` left out when it is > 0."""
        allowed = None
        if cfg.purify.mask_iou_thr > 0:
            flat = nodes['masks'].flatten(1).float()
            inter = flat @ flat.t()
            union = nodes['areas'][:, None] + nodes['areas'][None] - inter
            allowed = inter > cfg.purify.mask_iou_thr * union
        return self.purifier.group(
            nodes['desc'],
            nodes['xy'],
            nodes['scores'],
            nodes['labels'],
            group_thr=cfg.purify.group_thr,
            class_agnostic=cfg.purify.class_agnostic,
            allowed=allowed)

    def _purify(self, nodes: dict, cfg: ConfigDict) -> dict:
        """Group the nodes with the purifier (§3.4) and merge each group
        into one instance: its mask from the members' merged logits, its
        label the leader's; groups with an empty merged mask are dropped.
        At most ``max_per_img`` groups, best first, unless Matrix NMS
        follows (``purify.matrix_nms``): then every group goes on, and
        Matrix NMS caps them at ``nms_pre`` before and ``max_per_img``
        after its decay, as it does for the Baseline's candidates. Cutting
        them to ``max_per_img`` here would fill the places with duplicates
        that Matrix NMS then only decays, and drop distinct instances
        ranked below them (issue #13: -6 to -8 points of crowded recall on
        the dense synthetic variant).

        Two departures from the paper, both off by default and measured in
        issue #13 (``test_cfg.purify``):

        - ``mask_iou_thr`` > 0: two nodes may only be linked if their masks
          overlap by more than this IoU. The learned similarity sees
          descriptors and positions only, so touching look-alike instances
          (mask IoU ~0) can be merged into one; duplicates of one object
          overlap strongly. 0: the paper's graph alone decides.
        - ``rescore``: the group's score is the leader's category
          confidence x the maskness of the *merged* mask, instead of the
          leader's own score (computed before its mask was merged).
        """
        leaders, weights = self._group(nodes, cfg)
        if not cfg.purify.matrix_nms:
            leaders = leaders[:cfg.max_per_img]
            weights = weights[:cfg.max_per_img]
        mask_probs = torch.einsum('gn,nhw->ghw', weights,
                                  nodes['mask_logits']).sigmoid()
        masks = mask_probs > cfg.mask_thr
        areas = masks.sum((1, 2)).float()
        keep = areas > 0
        scores = nodes['scores'][leaders]
        if cfg.purify.rescore:
            scores = nodes['cls_scores'][leaders] * torch.nan_to_num(
                self._maskness(mask_probs, masks, areas))
        return dict(
            scores=scores[keep],
            labels=nodes['labels'][leaders][keep],
            mask_probs=mask_probs[keep],
            masks=masks[keep],
            areas=areas[keep])

    def _matrix_nms(self, nodes: dict, cfg: ConfigDict) -> dict:
        """mmdet's Matrix NMS: without a purifier (the Baseline) it removes
        the duplicates; after purifying (``test_cfg.purify.matrix_nms``) it
        decays the scores of groups that still overlap."""
        scores, labels, _, keep = mask_matrix_nms(
            nodes['masks'],
            nodes['labels'],
            nodes['scores'],
            mask_area=nodes['areas'],
            nms_pre=cfg.nms_pre,
            max_num=cfg.max_per_img,
            kernel=cfg.kernel,
            sigma=cfg.sigma,
            filter_thr=cfg.filter_thr)
        return dict(
            scores=scores, labels=labels, mask_probs=nodes['mask_probs'][keep])

    def _resize_masks(self, mask_probs: Tensor, img_meta: dict,
                      rescale: bool, mask_thr: float) -> Tensor:
        """Mask probabilities (N, h, w) at stride 4 -> binary masks at
        ``ori_shape`` (``rescale``) or ``img_shape``: back to the input
        frame, crop the padding, then resize, as SOLOv2 does."""
        h, w = mask_probs.shape[-2:]
        img_h, img_w = img_meta['img_shape'][:2]
        mask_probs = F.interpolate(
            mask_probs[None],
            size=(h * self.mask_stride, w * self.mask_stride),
            mode='bilinear',
            align_corners=False)[:, :, :img_h, :img_w]
        if rescale:
            mask_probs = F.interpolate(
                mask_probs,
                size=img_meta['ori_shape'][:2],
                mode='bilinear',
                align_corners=False)
        return mask_probs[0] > mask_thr
