# The embedded crowded-objects set (mmdet_pep.datasets.synthetic), 128 px.
# Make it with: python tools/dataset_converters/make_synthetic.py data/synthetic
# Three splits: train (800 images), val (100, for choosing recipes) and a
# held-out test (200, another seed) on which results are reported. Nothing
# is ever tuned on test.
# CocoDataset plus start-up checks of the annotations (mmdet_pep.datasets).
dataset_type = 'CheckedCocoDataset'
data_root = 'data/synthetic/'
metainfo = dict(
    classes=('disc', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75)])
backend_args = None
image_size = (128, 128)

# CheckedLoadImageFromFile (mmdet_pep.datasets.transforms) is mmcv's loader
# plus errors that name the file (missing, empty, truncated or corrupt images)
# and an explicit bit_depth for 16-bit images (set bit_depth=12 for 12-bit
# data stored in 16-bit PNGs, which the stock loader turns almost black). The
# test pipeline keeps the stock loader: mmdet's DetInferencer looks for it by
# name.
train_pipeline = [
    dict(
        type='CheckedLoadImageFromFile',
        bit_depth=16,
        backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='test/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_test.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
