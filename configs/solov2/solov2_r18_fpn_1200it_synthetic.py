# mmdet's SOLOv2 (its own head, losses and Matrix NMS, from
# mmdet::solov2/solov2_r50_fpn_1x_coco.py) on the project's shared synthetic
# recipe: the data, schedule and runtime bases of
# configs/pep/pep_r18_fpn_1200it_synthetic.py, and the sizes that recipe
# needs, the same as PEP's: ResNet-18 from scratch, 128-channel FPN and
# head, two-conv towers, grids and scale ranges for 128 px images, 3 classes.
_base_ = [
    '../_base_/models/solov2_r50_fpn.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    mask_head=dict(
        num_classes=3,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
        num_grids=[24, 18, 12, 8, 6],
        mask_feature_head=dict(
            feat_channels=64,
            out_channels=128,
            norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
    # Fewer candidates and detections for 128 px images with few objects.
    test_cfg=dict(nms_pre=200, max_per_img=50))
