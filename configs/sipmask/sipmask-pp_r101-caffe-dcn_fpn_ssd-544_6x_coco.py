# SipMask++ R-101 "6x" on COCO, the official `sipmask++_r101_caffe_fpn_ssd_6x`
# recipe (the real-time setting): SSD-style augmentation (photometric
# distortion, expand x1-4, min-IoU random crop, 576 x 576 without keeping
# the ratio, flip), test at 544 x 544; the train set repeated 3 times for 24
# epochs (steps after epochs 20 and 23), SGD lr 0.01, linear warm-up from
# lr / 3 over 500 iterations, no gradient clipping, no bias lr/decay
# multipliers. The head has 2-conv towers without norm, YOLACT's fast NMS
# (score 0.1, top 200) and the mask-IoU rescoring branch; the backbone has
# deformable convs on every third block of stages 2-4 (the official fork's
# rule).
#
# GPUs and batch: officially 4 GPUs x 8 images = 32 images at lr 0.01 (the
# official README's 4-GPU training command, JialeCao001/SipMask
# README.md:71; `imgs_per_gpu=8`, `lr=0.01` in
# SipMask-mmdetection/configs/sipmask/sipmask++_r101_caffe_fpn_ssd_6x.py).
# Here 8 per GPU: run it on 4 GPUs, or on N GPUs with `--auto-scale-lr`
# (lr 0.01 x 8N / 32).
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        type='ResNetDCNInterval',
        depth=101,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        dcn_interval=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron/resnet101_caffe')),
    bbox_head=dict(type='SipMaskPPHead', stacked_convs=2, norm_cfg=None),
    test_cfg=dict(
        nms_pre=1000,
        score_thr=0.1,
        nms=dict(type='fast_nms', iou_threshold=0.5, top_k=200),
        max_per_img=100,
        mask_thr=0.4))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18),
    dict(
        type='Expand',
        mean=[102.9801, 115.9465, 122.7717],
        to_rgb=False,
        ratio_range=(1, 4)),
    dict(
        type='MinIoURandomCrop',
        min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
        min_crop_size=0.3),
    dict(type='Resize', scale=(576, 576), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(544, 544), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,  # x 4 GPUs = 32, the official total
    num_workers=3,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=3,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args={{_base_.backend_args}})))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
# mmcv 1.x's linear warm-up reaches the lr at iteration 500; mmengine's
# LinearLR reaches it at end - 1: end=501.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
        end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[20, 23],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=None)
auto_scale_lr = dict(enable=False, base_batch_size=32)
