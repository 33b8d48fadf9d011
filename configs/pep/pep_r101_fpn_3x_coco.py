# The paper's main setting (§4.1, Tab. 1 and Tab. 2 "PEP"): ResNet-101 FPN,
# single scale (shorter side 800, longer <= 1333), 36 epochs.
_base_ = './pep_r50_fpn_3x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
