# mmdet's CondInst (its own FCOS branch, dynamic mask head and losses, from
# mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py) on PEP's
# paper setting: the data, 36-epoch schedule, runtime and ResNet-101 of
# configs/pep/pep_r101_fpn_3x_coco.py; the neck keeps CondInst's P3-P7.
_base_ = [
    '../_base_/models/condinst_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
