# SipMask R-50 ms-2x on COCO, the official `sipmask_r50_caffe_fpn_gn_ms_2x`
# recipe: the 1x recipe with a shorter side drawn from [640, 800] (mmdet
# 1.x's "range" multi-scale mode, mmdet 3's RandomResize) and 24 epochs,
# lr x0.1 after epochs 20 and 23. GPUs and batch as the 1x: officially 4
# GPUs x 4 images = 16 at lr 0.01 (JialeCao001/SipMask README.md:71;
# `imgs_per_gpu=4`, `lr=0.01` in sipmask_r50_caffe_fpn_gn_ms_2x.py), here 4
# per GPU and `auto_scale_lr.base_batch_size=16` (inherited).
_base_ = './sipmask_r50-caffe_fpn_gn-head_1x_coco.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomResize', scale=[(1333, 640), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 24
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
        milestones=[20, 23],
        gamma=0.1)
]
