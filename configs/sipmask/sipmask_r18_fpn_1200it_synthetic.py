# SipMask on the project's shared synthetic recipe: the data, schedule and
# runtime bases of configs/pep/pep_r18_fpn_1200it_synthetic.py and the sizes
# that recipe needs, the same as PEP's, CondInst's and EmbedMask's:
# ResNet-18 from scratch (PEP's input normalisation), 128-channel FPN
# (SipMask's P3-P7) and head, two-conv towers (so one classification conv
# before the alignment), 3 classes.
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(
        num_classes=3,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        # 512 hidden channels fuse 3 x 256 officially; 3 x 128 here.
        basis_channels=256,
        # FCOS's ranges scaled to 128 px images like CondInst's.
        regress_ranges=((-1, 16), (16, 32), (32, 64), (64, 128), (128, 1e8))),
    # Fewer candidates and detections for 128 px images with few objects.
    test_cfg=dict(nms_pre=200, max_per_img=50))
