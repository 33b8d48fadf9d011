# ResNet-50 FPN on mmdet's 1x schedule (12 epochs, lr 0.02 for 16 images,
# x0.1 at epochs 8 and 11) with gradient clipping: a cheaper COCO run, not
# a setting of the paper (which reports ResNet-101, 3x).
_base_ = [
    '../_base_/models/pep_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]

optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
