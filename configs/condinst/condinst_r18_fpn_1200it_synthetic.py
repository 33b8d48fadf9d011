# mmdet's CondInst (its own FCOS branch, dynamic mask head and losses, from
# mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py) on the
# project's shared synthetic recipe: the data, schedule and runtime bases of
# configs/pep/pep_r18_fpn_1200it_synthetic.py, and the sizes that recipe
# needs, the same as PEP's: ResNet-18 from scratch, 128-channel FPN and
# heads, two-conv towers, 3 classes. The neck keeps CondInst's own P3-P7
# layout (its FCOS branch needs it).
_base_ = [
    '../_base_/models/condinst_r50_fpn.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(
        num_classes=3,
        in_channels=128,
        feat_channels=128,
        stacked_convs=2,
        # FCOS's ranges scaled to 128 px images like PEP's scale_ranges.
        regress_ranges=((-1, 16), (16, 32), (32, 64), (64, 128), (128, 1e8))),
    mask_head=dict(
        mask_feature_head=dict(in_channels=128, feat_channels=64)),
    # Fewer candidates and detections for 128 px images with few objects.
    test_cfg=dict(nms_pre=200, max_per_img=50))
