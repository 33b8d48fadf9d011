# mmdet's SOLOv2 (its own head, losses and Matrix NMS, from
# mmdet::solov2/solov2_r50_fpn_1x_coco.py) on PEP's paper setting: the data,
# 36-epoch schedule, runtime and ResNet-101 of
# configs/pep/pep_r101_fpn_3x_coco.py.
_base_ = [
    '../_base_/models/solov2_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
