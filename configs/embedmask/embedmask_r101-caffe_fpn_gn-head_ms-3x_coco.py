# EmbedMask R-101 ms-3x on COCO, the official `embed_mask_R101_ms_3x` recipe:
# the R-50 1x recipe with caffe ResNet-101, a shorter side of 640 or 800
# (a random choice of the two, not a range) and 270k iterations of 16 images
# (36 epochs), lr x0.1 at 210k and 250k iterations (epochs 28 and 33).
# GPUs and batch as the R-50 1x: officially 4 GPUs x 4 = 16 images at lr
# 0.01 (`BASE_LR: 0.01`, `IMS_PER_BATCH: 16` in
# configs/embed_mask/embed_mask_R101_ms_3x.yaml; yinghdb/EmbedMask
# README.md:62-70 at be2885b), here 4 per GPU and
# `auto_scale_lr.base_batch_size=16` (inherited).
_base_ = './embedmask_r50-caffe_fpn_gn-head_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron/resnet101_caffe')))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
# mmengine's ConstantLR restores the lr at iteration end - 1, so end=501
# keeps iterations 0-499 at lr / 3, as the official warm-up does.
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[28, 33],
        gamma=0.1)
]
