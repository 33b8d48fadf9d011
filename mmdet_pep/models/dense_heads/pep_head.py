"""PEP head: semantics perceiving, mask learning, and the glue to the
excavator and purifier.

Shape shorthand: B images, L pyramid levels, S_l grid size of level l,
C foreground classes, D descriptor channels (= channels of the general
feature B, plus the relative-coordinate weights with ``rel_coords``),
h x w mask-feature size (stride 4), G GT instances of an image, N
descriptors (nodes) of an image.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.config import ConfigDict
from mmengine.model import initialize
from mmengine.structures import InstanceData
from torch import Tensor
from torch.profiler import record_function

from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.models.dense_heads.solov2_head import MaskFeatModule
from mmdet.models.layers import mask_matrix_nms
from mmdet.models.utils import generate_coordinate, multi_apply
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, MultiConfig, OptConfigType

from ..utils import coord_grid, masks_to_boxes
from ..utils.ranking import topk_stable


@MODELS.register_module()
class PEPHead(BaseMaskHead):
    """Semantics perceiving and mask learning head of `Perceive, Excavate
    and Purify: A Novel Object Mining Framework for Instance Segmentation
    <https://arxiv.org/abs/2304.08826>`_ (§3.2, §3.5, Eq. 1-2, 6-8).

    **Perceiving** (§3.2): per level a tower of 3x3 convs predicts C+1 class
    logits (background last) on an S_l x S_l grid, trained with softmax CE
    (Eq. 1-2). Where the paper is silent we use SOLO's assignment, made for
    this per-location representation: level ``l`` takes the instances whose
    sqrt(box area) is in ``scale_ranges[l]``; the positives are the cells
    of the centre of mass widened by ``pos_scale`` x the half box, at most
    one cell away; the smaller instance wins a shared cell.
    **Descriptors**: a second tower with CoordConv input, supervised only
    through the mask loss; the originals are the point-NMS maxima above
    ``test_cfg.score_thr``. **Mask learning** (§3.5): the general feature B
    (stride 4, SOLOv2's :class:`MaskFeatModule`) and ``M = I (x) B``, a 1x1
    dynamic conv per descriptor (Eq. 6), with ``loss_mask`` on every
    original and mined descriptor (Eq. 7). ``excavator=None`` /
    ``purifier=None`` give the Tab. 2 rows; without a purifier, Matrix NMS
    removes duplicates.

    Departures: ``loss_perceive`` (mmdet's CE) is the mean over all cells
    where Eq. 2 sums, its ``loss_weight`` weighs that mean; and the
    mechanisms draw their initial weights from a fork of the random state,
    so that at one seed PEP's base network starts as its Baseline's.

    Args:
        num_classes (int): Number of foreground classes C.
        in_channels (int): Channels of the FPN features.
        feat_channels (int): Channels of the perceiving/descriptor towers.
        stacked_convs (int): Convs per tower (paper: four).
        strides (Sequence[int]): Stride of each level after
            :meth:`resize_feats`.
        scale_ranges (Sequence[tuple]): sqrt(area) range of each level.
        pos_scale (float): Centre-region scale of positive cells.
        num_grids (Sequence[int]): Grid size S_l of each level.
        mask_feature_head (dict): Config of B; its ``out_channels`` is the
            descriptor size (paper: 256).
        excavator (dict, optional): Config of :class:`PEPExcavator`.
        purifier (dict, optional): Config of :class:`PEPPurifier`.
        loss_perceive (dict): Softmax loss over C+1 classes (Eq. 1-2).
        loss_mask (dict): Mask loss (Eq. 7; the paper's is sigmoid CE).
        rel_coords (str, optional): None (the paper) or ``'quadratic'``:
            ``rx, ry, rx^2, ry^2, rx*ry`` appended to B per descriptor (5
            more descriptor channels), Eq. 6 staying one 1x1 dynamic conv.
            ``r`` is a pixel's offset from the descriptor's cell or key
            pixel in units of its level's largest object size (mined: level
            0). A departure because I (x) B alone cannot tell touching
            look-alikes apart; the quadratic terms add an elliptical prior
            around the descriptor's own position.
        max_originals_train (int): GT centre cells per image excavated in
            training, chosen at random.
        detach_excavation (bool): False (the paper): mining's losses train
            the whole network. True, a departure so that a barely trained
            excavator cannot disturb the shared features: it sees B and
            the descriptors detached, the mined masks a detached B, their
            mask loss apart (``loss_mask_mined``).
        detach_purifier (bool): False (the paper): Eq. 5's loss reaches the
            descriptor tower. True: the purifier sees the descriptors
            detached; with ``detach_excavation`` too, the base network is
            trained by exactly the Baseline's losses.
        norm_cfg (dict): Norm of the towers.
        train_cfg (dict, optional): Unused, kept for the mmdet interface.
        test_cfg (dict, optional): Keys of :attr:`TEST_CFG_DEFAULTS`, checked
            at build time; see :meth:`_predict_by_feat_single` and the
            stages it calls.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    # Channels of R_n for each ``rel_coords`` choice.
    REL_COORD_CHANNELS = {None: 0, 'quadratic': 5}

    # The one declaration of every test_cfg key and its default.
    TEST_CFG_DEFAULTS = dict(
        nms_pre=500,  # originals, best first
        score_thr=0.1,
        mask_thr=0.5,
        max_per_img=100,
        # At most this many descriptors, originals and mined, reach mask
        # learning and the purifier (§3.4: N_all <= 30); None: no cap.
        max_descriptors=None,
        # SOLOv2's filter ('stride') or a fixed minimum number of pixels.
        min_area='stride',
        # Matrix NMS: the Baseline's duplicate removal, or after purifying
        # with purify.matrix_nms=True.
        kernel='gaussian',
        sigma=2.0,
        filter_thr=0.05,
        excavate=dict(max_originals=30, key_thr=0.3, max_keys=4),
        # The paper's purifying: the graph alone groups, the leader's score
        # (see _group and _purify). class_agnostic lets one object predicted
        # with two look-alike classes end as one instance.
        purify=dict(
            group_thr=0.5,
            class_agnostic=False,
            matrix_nms=False,
            mask_iou_thr=0.0,
            rescore=False))

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
        if loss_perceive.get('use_sigmoid', False):
            raise ValueError('loss_perceive must be a softmax loss over C+1 '
                             'classes (use_sigmoid=False), as Eq. 1-2')
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
        # Kernel weights over B, then those of the relative coordinates.
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
        self.cls_out_channels = num_classes + 1  # background last
        self.loss_mask = MODELS.build(loss_mask)
        self._init_layers()

        # See the class docstring: the mechanisms' weights from a fork of
        # the random state (here and in :meth:`init_weights`).
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
        if cfg.max_descriptors is not None and (
                isinstance(cfg.max_descriptors, bool)
                or not isinstance(cfg.max_descriptors, int)
                or cfg.max_descriptors < 1):
            raise ValueError('test_cfg.max_descriptors must be None (no cap) '
                             'or an int >= 1 (the paper: 30), got '
                             f'{cfg.max_descriptors!r}')
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
        """Initialize the base network as the Baseline's, then the
        mechanisms from a fork of the random state (see the class
        docstring); the semantic maps start at p_fg ~ 0.01 (the background
        logit at 4.6, the Normal init leaves the others at 0)."""
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
              (B, C+1, S_l, S_l), background last.
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
        Cell indices are computed in float64, as Python floats would.

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
            (L_M of Eq. 7), with an excavator ``loss_excavate`` (L_E),
            ``loss_excavate_cls`` (L_PE) and, with ``detach_excavation``,
            ``loss_mask_mined``; with a purifier ``loss_graph`` (L_M of
            Eq. 5).
        """
        mask_size = mask_feats.shape[-2:]
        with record_function('PEPHead.targets'):
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
        ], 1)  # (B, sum S^2, C+1)
        flat_desc = torch.cat([
            p.permute(0, 2, 3, 1).reshape(p.size(0), -1, self.desc_channels)
            for p in mlvl_desc_preds
        ], 1)  # (B, sum S^2, D)
        loss_perceive = self.loss_perceive(
            flat_cls.reshape(-1, self.cls_out_channels), torch.cat(labels))

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
        num_ori = [len(desc) for desc in batch_desc]
        exc_losses = {}
        if self.excavator is not None:
            with record_function('PEPHead.excavate_train'):
                exc_losses, batch_mined = self._excavate_train(
                    flat_desc.detach()
                    if self.detach_excavation else flat_desc, cell_xy,
                    pos_gt_inds, center_cells, gt_boxes, gt_centers,
                    exc_feats, batch_gt_instances, batch_img_metas)
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

        # Eq. 6-7: every node's mask is its 1x1 dynamic conv over B. With
        # ``detach_excavation`` the first ``num_ori[i]`` nodes (the
        # originals) form ``loss_mask`` and the mined ones, over a detached
        # B, ``loss_mask_mined``; otherwise all share ``loss_mask``.
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
            with record_function('PEPHead.loss_graph'):
                losses.update(
                    self.purifier.loss(batch_desc, batch_xy, batch_inds))
        return losses

    def _dynamic_masks(self, desc: Tensor, xy: Tensor, scale: Tensor,
                       mask_feats: Tensor) -> Tensor:
        """Eq. 6: the mask logits of N descriptors, each a 1x1 dynamic
        conv over B and, with ``rel_coords``, over its own relative
        coordinates. The coordinate channels depend on x or y alone (or on
        their product), so they are added as broadcast rows and columns,
        never materialised as an (N, 5, h, w) input.

        Args:
            desc (Tensor): Descriptors, (N, D).
            xy (Tensor): Their positions in the [-1, 1] frame, (N, 2).
            scale (Tensor): Their unit of relative coordinates in pixels,
                (N,).
            mask_feats (Tensor): General feature B of the image,
                (D_B, h, w).

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
        col = weights[:, :1] * rx + weights[:, 2:3] * rx.square()
        row = weights[:, 1:2] * ry + weights[:, 3:4] * ry.square()
        logits = logits + col[:, None, :] + row[:, :, None]
        return logits + (weights[:, 4:5, None] * ry[:, :, None] *
                         rx[:, None, :])

    def _excavate_train(self, flat_desc: Tensor, cell_xy: Tensor,
                        pos_gt_inds: List[Tensor], center_cells: List[Tensor],
                        gt_boxes: List[Tensor], gt_centers: List[Tensor],
                        exc_feats: Tensor, batch_gt_instances: InstanceList,
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
                    gt_inds=pos_gt_inds[i][ori]))
        batch_gt = [
            dict(boxes=boxes, centers=centers, labels=gt.labels)
            for boxes, centers, gt in zip(gt_boxes, gt_centers,
                                          batch_gt_instances)
        ]
        return self.excavator.loss(exc_feats, batch_originals, batch_gt,
                                   batch_img_metas[0]['batch_input_shape'])

    def predict_by_feat(self,
                        mlvl_desc_preds: List[Tensor],
                        mlvl_cls_preds: List[Tensor],
                        mask_feats: Tensor,
                        exc_feats: Optional[Tensor],
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        return_trace: bool = False,
                        **kwargs):
        """Turn head outputs into instance masks.

        Each stage of :meth:`_predict_by_feat_single` runs under the
        profiler label ``PEPHead.<stage>``; ``return_trace`` also returns,
        per image, a dict of each stage's output (the return value of the
        stage's method, e.g. ``trace['node_masks']`` of :meth:`_node_masks`,
        ``trace['mine']`` of :meth:`PEPExcavator.predict`).

        Args:
            mlvl_desc_preds (list[Tensor]): Each (B, D, S_l, S_l).
            mlvl_cls_preds (list[Tensor]): Each (B, C+1, S_l, S_l).
            mask_feats (Tensor): (B, D_B, h, w).
            exc_feats (Tensor | None): (B, F, h/2, w/2).
            batch_img_metas (list[dict]): Meta information of each image.
            rescale (bool): Return masks at ``ori_shape`` if True, else at
                ``img_shape``.
            return_trace (bool): Also return the per-stage trace.

        Returns:
            list[:obj:`InstanceData`]: Per image ``scores`` (N,),
            ``labels`` (N,), ``masks`` (N, H, W) bool and ``bboxes`` (N, 4)
            derived from the masks; with ``return_trace`` a tuple of that
            list and the list of each image's trace (dict).
        """
        flat_scores, flat_desc, strides = [], [], []
        for lvl, (cls, desc) in enumerate(zip(mlvl_cls_preds,
                                              mlvl_desc_preds)):
            prob = cls.float().softmax(dim=1)[:, :-1]
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
        results, traces = [], []
        for i, img_meta in enumerate(batch_img_metas):
            trace = {} if return_trace else None
            results.append(
                self._predict_by_feat_single(
                    flat_scores[i], flat_desc[i], mask_feats[i],
                    None if exc_feats is None else exc_feats[i], cell_xy,
                    strides, img_meta, rescale, trace=trace))
            traces.append(trace)
        return (results, traces) if return_trace else results

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
                                cfg: OptConfigType = None,
                                trace: Optional[dict] = None) -> InstanceData:
        """Predict the instances of one image in stages: select the
        original descriptors, mine descriptors around the best of them and
        add the confident ones, cap their number (``max_descriptors``),
        compute and filter their masks, group and merge them with the
        purifier (or Matrix NMS), resize the masks and box them.

        Args:
            cls_scores (Tensor): Point-NMSed class probabilities of all
                cells, (sum S^2, C).
            desc_preds (Tensor): Descriptors of all cells, (sum S^2, D).
            mask_feats (Tensor): General feature B, (D_B, h, w).
            exc_feat (Tensor | None): Excavation features, (F, h/2, w/2).
            cell_xy (Tensor): Cell centres, (sum S^2, 2).
            strides (Tensor): Stride of each cell's level, (sum S^2,).
            img_meta (dict): Meta information of the image.
            rescale (bool): Masks at ``ori_shape`` if True.
            cfg (dict, optional): Test config; ``self.test_cfg`` if None.
            trace (dict, optional): Filled with each stage's output.

        Returns:
            :obj:`InstanceData`: See :meth:`predict_by_feat`.
        """
        cfg = self.test_cfg if cfg is None else self._check_test_cfg(cfg)

        def stage(name: str, step: Callable, *args):
            with record_function(f'PEPHead.{name}'):
                out = step(*args)
            if trace is not None:
                trace[name] = out
            return out

        nodes = stage('select_originals', self._select_originals, cls_scores,
                      desc_preds, cell_xy, strides, cfg)
        if nodes is not None and self.excavator is not None:
            mined = stage('mine', self._mine, nodes, exc_feat, cfg)
            nodes = stage('add_mined', self._add_mined, nodes, mined, cfg)
        if nodes is not None and cfg.max_descriptors is not None:
            nodes = stage('cap_descriptors', self._cap_descriptors, nodes,
                          cfg.max_descriptors)
        if nodes is not None:
            nodes = stage('node_masks', self._node_masks, nodes, mask_feats,
                          cfg)
        if nodes is not None and self.purifier is not None:
            nodes = stage('group', self._group, nodes, cfg)
            nodes = stage('purify', self._purify, nodes, cfg)
        if nodes is not None and (self.purifier is None
                                  or cfg.purify.matrix_nms):
            nodes = stage('matrix_nms', self._matrix_nms, nodes, cfg)
        if nodes is None or len(nodes['scores']) == 0:
            return self._empty_results(img_meta, rescale, mask_feats.device)
        masks = stage('resize_masks', self._resize_masks, nodes['mask_probs'],
                      img_meta, rescale, cfg.mask_thr)
        results = InstanceData()
        results.masks = masks
        results.labels = nodes['labels']
        results.scores = nodes['scores']
        results.bboxes = stage('masks_to_boxes', masks_to_boxes, masks)
        return results

    def _select_originals(self, cls_scores: Tensor, desc_preds: Tensor,
                          cell_xy: Tensor, strides: Tensor,
                          cfg: ConfigDict) -> Optional[dict]:
        """Original descriptors: (cell, class) pairs above ``score_thr``,
        best first, at most ``nms_pre``; None if there is none.

        Returns:
            dict | None: The nodes: ``scores`` (N,), ``labels`` (N,),
            ``desc`` (N, D), ``xy`` (N, 2), ``stride`` (N,), ``scale`` (N,),
            the unit of the relative coordinates, and ``mined`` (N,) bool.
        """
        # Non-finite features must give no detections, never a crash: their
        # probabilities are NaN (GroupNorm of an inf is NaN), NaN becomes 0.
        cls_scores = torch.nan_to_num(cls_scores)
        candidates = (cls_scores > cfg.score_thr).nonzero()
        if candidates.size(0) == 0:
            return None
        scores = cls_scores[candidates[:, 0], candidates[:, 1]]
        # Best first: the excavator mines around the top originals only.
        # Equal scores keep the (cell, class) order.
        scores, top = topk_stable(scores, min(cfg.nms_pre, scores.numel()))
        cells, labels = candidates[top, 0], candidates[top, 1]
        return dict(
            scores=scores,
            labels=labels,
            desc=desc_preds[cells],
            xy=cell_xy[cells],
            stride=strides[cells],
            scale=self.level_scales[self.cell_index[0, cells]],
            mined=torch.zeros_like(labels, dtype=torch.bool))

    def _mine(self, nodes: dict, exc_feat: Tensor,
              cfg: ConfigDict) -> dict:
        """The excavator's key pixels and mined descriptors around the best
        ``excavate.max_originals`` originals (see
        :meth:`PEPExcavator.predict`)."""
        num_ori = min(cfg.excavate.max_originals, nodes['desc'].size(0))
        return self.excavator.predict(
            exc_feat, nodes['desc'][:num_ori], nodes['xy'][:num_ori],
            dict(
                key_thr=cfg.excavate.key_thr,
                max_keys=cfg.excavate.max_keys))

    def _add_mined(self, nodes: dict, mined: dict, cfg: ConfigDict) -> dict:
        """Append the mined descriptors whose class score (key-pixel class x
        peak confidence) passes ``score_thr``; they count as cells of the
        finest level for the area filter and the relative coordinates."""
        mined_scores, mined_labels = mined['scores'].max(dim=1)
        keep = mined_scores > cfg.score_thr
        num = int(keep.sum())
        stride = nodes['stride']
        return dict(
            scores=torch.cat([nodes['scores'], mined_scores[keep]]),
            labels=torch.cat([nodes['labels'], mined_labels[keep]]),
            desc=torch.cat([nodes['desc'], mined['descriptors'][keep]]),
            xy=torch.cat([nodes['xy'], mined['xy'][keep]]),
            stride=torch.cat(
                [stride, stride.new_full((num, ), min(self.strides))]),
            scale=torch.cat(
                [nodes['scale'], self.level_scales[:1].expand(num)]),
            mined=torch.cat(
                [nodes['mined'], nodes['mined'].new_ones((num, ))]))

    @staticmethod
    def _cap_descriptors(nodes: dict, max_descriptors: int) -> dict:
        """The paper's N_all <= 30 (§3.4): of the originals and mined
        descriptors, only the ``max_descriptors`` best-scoring reach mask
        learning and the purifier, in their order."""
        if nodes['scores'].numel() <= max_descriptors:
            return nodes
        keep = topk_stable(nodes['scores'], max_descriptors)[1].sort().values
        return {key: value[keep] for key, value in nodes.items()}

    def _node_masks(self, nodes: dict, mask_feats: Tensor,
                    cfg: ConfigDict) -> Optional[dict]:
        """Masks of all nodes (Eq. 6), without those too small
        (``test_cfg.min_area``) or with a non-finite score; the score
        becomes category confidence x mask quality ("maskness").

        ``min_area='stride'`` is SOLOv2's filter: a node's mask at B's
        resolution (stride 4) needs more pixels than its level's stride,
        which drops the masks of objects of about 10 x 10 px; a number
        keeps masks of more pixels than it (0: every non-empty mask), for
        data with many small objects.

        Returns:
            dict | None: ``scores``, ``cls_scores`` (the category
            confidences alone), ``labels``, ``desc``, ``xy``, ``mined``,
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
            mined=nodes['mined'][keep],
            mask_logits=mask_logits[keep],
            mask_probs=mask_probs,
            masks=masks,
            areas=areas)

    @staticmethod
    def _maskness(mask_probs: Tensor, masks: Tensor, areas: Tensor) -> Tensor:
        """SOLOv2's mask quality: the mean probability inside each binary
        mask, (N,)."""
        return (mask_probs * masks).sum((1, 2)) / areas

    def _group(self, nodes: dict, cfg: ConfigDict) -> dict:
        """The purifier's groups of the nodes (§3.4, see
        :meth:`PEPPurifier.group`): ``nodes`` plus ``leaders`` (G,) and
        ``members`` (G, N). With ``purify.mask_iou_thr`` > 0, a departure
        for crowds: two nodes may only be linked if their masks overlap by
        more than this IoU, because the learned similarity sees descriptors
        and positions only and can link touching look-alike objects, while
        duplicates of one object overlap strongly."""
        allowed = None
        if cfg.purify.mask_iou_thr > 0:
            flat = nodes['masks'].flatten(1).float()
            inter = flat @ flat.t()
            union = nodes['areas'][:, None] + nodes['areas'][None] - inter
            allowed = inter > cfg.purify.mask_iou_thr * union
        leaders, members = self.purifier.group(
            nodes['desc'],
            nodes['xy'],
            nodes['scores'],
            nodes['labels'],
            group_thr=cfg.purify.group_thr,
            class_agnostic=cfg.purify.class_agnostic,
            allowed=allowed)
        return dict(nodes, leaders=leaders, members=members)

    def _purify(self, nodes: dict, cfg: ConfigDict) -> dict:
        """Merge each group of :meth:`_group` into one instance: its mask
        from the members' merged logits, its label the leader's; groups
        with an empty merged mask are dropped.

        At most ``max_per_img`` groups, best first, unless Matrix NMS
        follows (``purify.matrix_nms``, a departure that decays groups which
        still overlap): then every group goes on and Matrix NMS applies
        ``nms_pre`` and ``max_per_img``, because a cut here would fill the
        places with duplicates that Matrix NMS only decays. With
        ``purify.rescore`` (a departure) a group's score is the leader's
        category confidence x the maskness of the merged mask instead of
        the leader's own score, so that it rates the mask it outputs.
        """
        leaders, members = nodes['leaders'], nodes['members']
        if not cfg.purify.matrix_nms:
            leaders = leaders[:cfg.max_per_img]
            members = members[:cfg.max_per_img]
        weights = self.purifier.merge_weights(leaders, members,
                                              nodes['scores'])
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
