# The paper's main setting (§4.1, Tab. 1 and Tab. 2 "PEP"): ResNet-101 FPN
# from ImageNet weights, single scale (shorter side 800, longer <= 1333),
# SGD lr 0.01 for 16 images, 36 epochs with lr x0.1 at epochs 27 and 33.
# For ResNet-50 on the same schedule: --cfg-options model.backbone.depth=50
# model.backbone.init_cfg.checkpoint=torchvision://resnet50
_base_ = [
    '../_base_/models/pep_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
