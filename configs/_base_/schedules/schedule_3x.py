# The paper's schedule (§4.1): 36 epochs, SGD lr 0.01, momentum 0.9, weight
# decay 1e-4, lr x0.1 at epochs 27 and 33, 16 images per batch (8 GPUs x 2).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=36, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=36,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))

# lr is for 16 images per batch; `--auto-scale-lr` rescales it linearly.
auto_scale_lr = dict(enable=False, base_batch_size=16)
