# The recommended PEP recipe for the embedded crowded-objects set
# (mmdet_pep.datasets.synthetic, 128 px), trained from scratch on a CPU in
# 1200 iterations; the `make demo` model. Every setting that departs from
# the paper is written out here; configs/pep/README.md lists them with
# their measured effect.
_base_ = [
    '../_base_/models/pep_r50_fpn.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    # ResNet-18 from scratch: no ImageNet weights, every stage trained and
    # BatchNorm statistics updated (small images, CPU budget).
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    mask_head=dict(
        num_classes=3,
        # 128 channels and 2 tower convs (paper: 256 and 4): a CPU budget.
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        # Levels and grids scaled to 128 px images, whose objects are
        # ~8-40 px: the grids give small objects cells of their own.
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
        num_grids=[24, 18, 12, 8, 6],
        # General feature B with D = 128 (paper: 256).
        mask_feature_head=dict(
            feat_channels=64,
            out_channels=128,
            norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # Relative coordinates (rx, ry, rx^2, ry^2, rx*ry from each
        # descriptor's own cell) appended to B per descriptor: Eq. 6 stays
        # one 1x1 dynamic conv, and a descriptor can place its mask on its
        # own object among touching look-alikes.
        rel_coords='quadratic',
        # The excavator and the purifier learn on top of the base network:
        # their losses do not reach B, the towers or the backbone, which
        # are trained by the Baseline's losses alone (paper: end to end).
        # Trained end to end, the excavator's losses hurt the base network.
        detach_excavation=True,
        detach_purifier=True,
        # L_P is a mean over every grid cell of the batch (Eq. 2 sums), and
        # ~96 % of the cells are background: weight 16 restores the
        # positive cells' share of the gradient.
        loss_perceive=dict(loss_weight=16.0),
        # Dice (SOLOv2's mask loss and weight) instead of the paper's CE:
        # from scratch on tiny objects CE is swamped by background pixels.
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0)),
    test_cfg=dict(
        # Candidates and outputs sized for 128 px images.
        nms_pre=200,
        max_per_img=50,
        # CondInst's threshold (SOLOv2's is 0.1): keeps low-scored objects
        # in crowds.
        score_thr=0.05,
        # Keep every non-empty mask: SOLOv2's area filter (the head's
        # default, min_area='stride') drops whole objects of ~10 x 10 px.
        min_area=0,
        # Purifying links only masks that overlap (IoU > 0.5), scores each
        # merged group from its merged mask, then runs Matrix NMS over the
        # groups: the paper's grouping merges touching instances. The
        # paper's purifying is
        # purify=dict(mask_iou_thr=0.0, rescore=False, matrix_nms=False).
        purify=dict(mask_iou_thr=0.5, rescore=True, matrix_nms=True)))
