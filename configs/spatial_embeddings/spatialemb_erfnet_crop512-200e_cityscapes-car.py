# The released SpatialEmbeddings model: Cityscapes cars, stage 1 (official
# src/train_config.py): 512 x 512 crops centred on cars, an epoch is 3000
# random crops, batch 16, Adam lr 5e-4 (weight decay 1e-4), poly lr
# (power 0.9) stepped per epoch, 200 epochs, no other augmentation. Stage 2
# is spatialemb_erfnet_crop1024-ft20e_cityscapes-car.py. The COCO-format
# annotations come from mmdet's tools/dataset_converters/cityscapes.py.
#
# The crops are drawn uniformly over the cars, as the official one crop per
# car: ObjectUniformSampler draws an image in proportion to its cars, then
# RandomObjectCenteredCrop one of its cars uniformly. Both count every
# class of metainfo (classes=None: CocoDataset keeps only those), so they
# agree on which objects there are.
#
# GPUs and batch: officially one process, one DataLoader of batch 16 (the
# total) at lr 5e-4, the model wrapped in DataParallel over whatever GPUs
# are visible (davyneven/SpatialEmbeddings src/train.py:39-40, 53;
# src/train_config.py `batch_size: 16`, `lr=5e-4`); the GPU count is not
# stated. mmdet's batch_size is per GPU (and ObjectUniformSampler splits
# the 3000 draws over the ranks): run this config on 1 GPU (16 x 1 = 16),
# or on N GPUs with `train_dataloader.batch_size=16/N`, which keeps the
# official total and lr. Otherwise `--auto-scale-lr` scales Adam's lr
# linearly with the total batch (lr 5e-4 x 16N / 16), mmdet's rule, not the
# official recipe.
_base_ = [
    '../_base_/models/spatialemb_erfnet.py',
    'mmdet::_base_/datasets/cityscapes_instance.py',
    '../_base_/default_runtime.py'
]

classes = ('car', )
metainfo = dict(classes=classes)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    # crop_size is (width, height), as mmdet's RandomCrop.
    dict(type='RandomObjectCenteredCrop', crop_size=(512, 512)),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=16,  # x 1 GPU = 16, the official total
    num_workers=8,
    sampler=dict(
        _delete_=True, type='ObjectUniformSampler', num_samples=3000),
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='CityscapesDataset',
        data_root='data/cityscapes/',
        metainfo=metainfo,
        ann_file='annotations/instancesonly_filtered_gtFine_train.json',
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(dataset=dict(metainfo=metainfo))
test_dataloader = val_dataloader

model = dict(mask_head=dict(num_classes=len(classes)))

max_epochs = 200
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, weight_decay=1e-4))
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
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=16)
