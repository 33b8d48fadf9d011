# SipMask-VIS on the embedded synthetic video set: the image model of
# sipmask_r18_fpn_1200it_synthetic.py (ResNet-18 from scratch, 128-channel
# FPN P3-P7 and head, two-conv towers) as detector, the track head with
# the official rule of stacked_convs - 1 track convs (here 1) and a 512-d
# embedding, the official tracker memory (SipMaskVISTracker); the shared
# schedule (AdamW, 1200 iterations) on batches of 4 clips (a key and a
# reference frame each: 8 images, as the image recipe's batch); the
# official SipMask-VIS test, as in the YouTube-VIS config. Started from the
# synthetic image SipMask (`load_from` below), as the official recipe
# starts from the COCO one.
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

detector = _base_.model
detector.pop('data_preprocessor')
detector.backbone.update(
    depth=18,
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)
detector.neck.update(in_channels=[64, 128, 256, 512], out_channels=128)
detector.bbox_head.update(
    num_classes=3,
    in_channels=128,
    feat_channels=128,
    stacked_convs=2,
    basis_channels=256,
    regress_ranges=((-1, 16), (16, 32), (32, 64), (64, 128), (128, 1e8)))
# The official SipMask-VIS test (see the YouTube-VIS config): fast NMS,
# score 0.03, 10 per frame, masks > 0.5. The image recipe's test (class-wise
# NMS, score 0.05, 50 per frame, masks > 0.4), this config's earlier one:
# `--cfg-options model.detector.test_cfg.nms.type=nms
# model.detector.test_cfg.score_thr=0.05 model.detector.test_cfg.max_per_img=50
# model.detector.test_cfg.mask_thr=0.4`.
detector.test_cfg.update(
    nms_pre=200,
    score_thr=0.03,
    nms=dict(type='fast_nms', iou_threshold=0.5),
    max_per_img=10,
    mask_thr=0.5)
del _base_.model

model = dict(
    type='SipMaskVIS',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    detector=detector,
    track_head=dict(
        type='SipMaskTrackHead',
        in_channels=128,
        feat_channels=128,
        num_convs=1,
        num_levels=3,
        embed_channels=512,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
    # Never forgets, first labels (mmdet's memory, this config's earlier
    # one: `num_frames_retain=20`, `label_memory='last'`); the official
    # assignment (`assignment='unique'`: one to one, no detection dropped).
    tracker=dict(
        type='SipMaskVISTracker',
        match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0),
        num_frames_retain=None,
        label_memory='first'))

default_hooks = dict(
    visualization=dict(type='TrackVisualizationHook', draw=False))
visualizer = dict(
    type='TrackLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
del detector
# The synthetic image SipMask (seed 0 of compare.py's protocol of
# sipmask_r18_fpn_1200it_synthetic.py: the same sizes, 3 classes and 128 px
# images drawn as the clips' frames) in this model's names (`detector.*`),
# as the official recipe loads the COCO SipMask; the track head starts
# from scratch, as officially. compare_vis.py makes the file when it is
# missing (mmdet_pep_tools/image_init.py), as does:
#   python tools/analysis_tools/compare_vis.py \
#       configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py \
#       --init-only
# tools/train.py stops naming the file and that command while it is
# missing; `--cfg-options load_from=None` trains from scratch (the earlier
# recipe).
image_init = dict(
    name='SipMask',
    config='configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py',
    seed=0)
load_from = 'checkpoints/sipmask_r18_fpn_1200it_synthetic_seed0_vis.pth'
