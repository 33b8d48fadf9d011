# EmbedMask R-50 1x on COCO, the official code's `embed_mask_R50_1x` recipe:
# 90k iterations of 16 images (12 epochs of train2017), lr x0.1 at 60k and
# 80k iterations (epochs 8 and 11), constant warm-up at 1/3 of the lr for
# 500 iterations, SGD lr 0.01, weight decay 1e-4, bias lr x2 and no weight
# decay on biases, no gradient clipping; 800 x 1333 input.
_base_ = [
    '../_base_/models/embedmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

# mmengine's ConstantLR restores the lr at iteration end - 1, so end=501
# keeps iterations 0-499 at lr / 3, as the official warm-up does.
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=501),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=None)
