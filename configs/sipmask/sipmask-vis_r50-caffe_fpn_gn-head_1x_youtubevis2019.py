# SipMask-VIS R-50 on YouTube-VIS 2019, the official
# SipMask-VIS/configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py recipe: the
# COCO image model (caffe R-50, GN head) with stacked_convs=3 (so 2
# classification and 2 track convs), 40 classes; 640 x 360 frames, flip,
# 8 clips per GPU; SGD lr 0.005, momentum 0.9, weight decay 1e-4,
# bias lr x2 without decay; linear warm-up from lr / 80 over 1000
# iterations; lr x0.1 after epochs 8 and 11 of 12; the official test (see
# `test_cfg` and `tracker` below). Initialised from the COCO image model
# (`load_from` below), as officially. Where the official config is silent,
# mmdet's MaskTrack R-CNN recipe: its YouTube-VIS pipeline, frame sampling
# (every frame a key frame, one reference frame from the clip) and
# evaluation.
#
# GPUs and batch: officially 4 GPUs x 8 clips = 32 at lr 0.005 (the official
# README's VIS training command, `dist_train.sh ... 4`, JialeCao001/SipMask
# README.md:132; `imgs_per_gpu=8` in the config above; its `device_ids` are
# unused, mmdet 1.x takes `cfg.gpus`, SipMask-VIS/mmdet/apis/train.py:201).
# Here 8 per GPU: run it on 4 GPUs, or on N GPUs with `--auto-scale-lr`
# (lr 0.005 x 8N / 32).
#
# The val/test ground truth of YouTube-VIS is private: this config writes
# the server submission (format_only=True); for local AP use
# sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019-local.py.
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/youtube_vis.py',
    '../_base_/default_runtime.py'
]

detector = _base_.model
preprocessor = detector.pop('data_preprocessor')
# Every backbone weight comes from the COCO model (`load_from`): no ImageNet
# weights to fetch first.
detector.backbone.init_cfg = None
detector.bbox_head.update(num_classes=40, stacked_convs=3)
# The official test (SipMask-VIS/mmdet/models/anchor_heads/sipmask_head.py:
# 686-766, whatever its config's `nms` says): the 200 best locations of
# each level by cls x centerness, YOLACT's fast NMS at IoU 0.5 over the top
# 200 of each class (the head's `top_k` default), score 0.03, the 10 best,
# masks > 0.5. This zoo's earlier test, class-wise NMS and the image
# model's 0.4: `--cfg-options model.detector.test_cfg.nms.type=nms
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
    data_preprocessor=dict(preprocessor, type='TrackDataPreprocessor'),
    detector=detector,
    track_head=dict(
        type='SipMaskTrackHead',
        in_channels=256,
        feat_channels=256,
        num_convs=2,
        num_levels=3,
        embed_channels=512,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
    # The official memory: tracks are never forgotten within a clip and
    # keep their first label (mmdet's: `num_frames_retain=20`,
    # `label_memory='last'`).
    tracker=dict(
        type='SipMaskVISTracker',
        match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0),
        num_frames_retain=None,
        label_memory='first'))
# The official `load_from` (SipMask-VIS/configs/sipmask/
# sipmask_r50_caffe_fpn_gn_1x.py:130): SipMask R-50 1x trained on COCO, the
# official release (sipmask_r50_caffe_1x.pth: JialeCao001/SipMask
# README.md:78, the model linked at :98), in this model's key names:
#   python tools/model_converters/sipmask_official_to_mmdet.py \
#       sipmask_r50_caffe_1x.pth \
#       checkpoints/sipmask_r50_caffe_fpn_gn_1x_coco_mmdet-pep_vis.pth \
#       --config \
#     configs/sipmask/sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py \
#       --skip-unmatched
# --skip-unmatched leaves out what this model has not, as the official
# load_from skipped it (strict=False): the COCO model's third
# classification and fourth box conv (stacked_convs 4 there, 3 here) and its
# 80-class classifier; the classifier and the track head keep their
# initialisation. Nothing is downloaded: training stops naming the file
# while it is missing.
load_from = 'checkpoints/sipmask_r50_caffe_fpn_gn_1x_coco_mmdet-pep_vis.pth'

# mmdet's YouTube-VIS pipelines and data set on checked data
# (mmdet_pep/datasets/video_checks.py): a file without videos, a missing
# frame, a frame of another size fail naming the clip and the frame.
train_pipeline = [
    dict(
        type='UniformRefFrameSample',
        num_ref_imgs=1,
        frame_range=100,
        filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='CheckedLoadFrameFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=(640, 360), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='CheckedLoadFrameFromFile'),
            dict(type='Resize', scale=(640, 360), keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    _delete_=True,
    batch_size=8,  # x 4 GPUs = 32, the official total
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='TrackImgSampler'),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type='CheckedYouTubeVISDataset',
        data_root='data/youtube_vis_2019/',
        dataset_version='2019',
        ann_file='annotations/youtube_vis_2019_train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type='CheckedYouTubeVISDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
# mmengine's LinearLR reaches the full lr at iteration end - 1; mmcv 1.x's
# linear warm-up at iteration 1000: end=1001 gives mmcv's lr at every step.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0 / 80,
        by_epoch=False,
        begin=0,
        end=1001),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_begin=13)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

val_evaluator = dict(
    type='YouTubeVISIDSwitchMetric',
    metric='youtube_vis_ap',
    outfile_prefix='./youtube_vis_results',
    format_only=True)
test_evaluator = val_evaluator

default_hooks = dict(
    visualization=dict(type='TrackVisualizationHook', draw=False))
visualizer = dict(
    type='TrackLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
del detector, preprocessor
