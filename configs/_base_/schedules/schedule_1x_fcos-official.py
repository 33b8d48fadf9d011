# The 1x COCO schedule of the official FCOS-based codes (EmbedMask's and
# SipMask's): 12 epochs of 16 images, lr x0.1 after epochs 8 and 11,
# constant warm-up at 1/3 of the lr for 500 iterations, SGD lr 0.01,
# momentum 0.9, weight decay 1e-4, bias lr x2 and no weight decay on
# biases, no gradient clipping.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

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
