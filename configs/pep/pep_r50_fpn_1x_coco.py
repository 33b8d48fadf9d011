_base_ = [
    '../_base_/models/pep_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]

optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
