# Stage 2 of the released car model (the author in the official repo's
# issue #8: "resume, n_epochs=220, type='train'"): 20 more epochs on random
# 1024 x 1024 crops of the full training images, which the seed map needs.
# The official run resumes the poly schedule of 220 epochs at epoch 200:
# lr 5e-4 * (1 - 200 / 220) ** 0.9 decaying with power 0.9 to 0 over these
# 20 epochs, which is exactly a poly schedule of 20 epochs from that lr.
# Loading stage 1's weights here drops Adam's moments, which the official
# resume keeps. The official stage 2 (`type='train'`) draws from all 2975
# training images, car-free ones included: filter_empty_gt=False here
# (stage 1 keeps True, as its crops are centred on objects), and its 3000
# samples an epoch are uniform over the images (RandomSubsetSampler, the
# official random.randint over them), not stage 1's draw over objects.
# Batch 16 on 1 GPU, as stage 1.
_base_ = './spatialemb_erfnet_crop512-200e_cityscapes-car.py'

load_from = ('work_dirs/spatialemb_erfnet_crop512-200e_cityscapes-car/'
             'epoch_200.pth')

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomCrop',
        crop_size=(1024, 1024),
        allow_negative_crop=True,
        recompute_bbox=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='RandomSubsetSampler', num_samples=3000),
    dataset=dict(
        pipeline=train_pipeline,
        filter_cfg=dict(filter_empty_gt=False, min_size=0)))

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=5e-4 * (20 / 220)**0.9))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.,
        begin=0,
        # mmengine's poly reaches eta_min at its last step, end - 1; the
        # official lambda (1 - epoch / max_epochs) ** 0.9 reaches 0 one
        # epoch after the last.
        end=max_epochs + 1,
        by_epoch=True)
]
