# SipMask R-101 ms-4x on COCO, the official
# `sipmask_r101_caffe_fpn_gn_ms_4x` recipe: the ms-2x recipe with caffe
# ResNet-101 and 48 epochs, lr x0.1 after epochs 40 and 46. The official
# config puts 2 images on each GPU without saying how many GPUs; lr 0.01
# is the 16-image lr of the other configs, so 8 GPUs x 2 (mmdet's COCO
# base) is assumed.
_base_ = './sipmask_r50-caffe_fpn_gn-head_ms-2x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron/resnet101_caffe')))

max_epochs = 48
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[40, 46],
        gamma=0.1)
]
