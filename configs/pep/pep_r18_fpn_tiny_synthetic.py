# For tests and smoke runs only: it trains for 4 iterations and its numbers
# mean nothing. It is the recommended synthetic recipe
# (pep_r18_fpn_1200it_synthetic.py), shrunk: it exercises every component of
# PEP (perceiving, excavating, purifying, mask learning) with the recipe's
# switches, the data pipeline, evaluation, checkpointing and resuming in
# seconds on a CPU: ResNet-18 with 8 base channels, 16-channel FPN and head,
# 64 px images. Make the data with
#   python tools/dataset_converters/make_synthetic.py data/tiny_synthetic \
#       --num-train 8 --num-val 4 --image-size 64
# (the tests generate their own and point `data_root` there).
_base_ = './pep_r18_fpn_1200it_synthetic.py'

data_root = 'data/tiny_synthetic/'
image_size = (64, 64)
max_iters = 4

model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    mask_head=dict(
        in_channels=16,
        feat_channels=16,
        num_grids=[12, 10, 8, 6, 4],
        mask_feature_head=dict(
            feat_channels=16,
            out_channels=16,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        excavator=dict(
            feat_channels=8,
            hidden_channels=8,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        purifier=dict(embed_channels=16),
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
    # After a few iterations every class score is still near the
    # initialisation prior (~0.01); a zero threshold keeps detections coming
    # so that evaluation, visualisation and the purifier are exercised.
    test_cfg=dict(
        nms_pre=50,
        score_thr=0.,
        max_per_img=20,
        # Keep every candidate through the Matrix NMS after purifying too.
        filter_thr=0.,
        excavate=dict(max_originals=10)))

# The base pipelines were resolved with its 128 px `image_size`, so changing
# the variable alone would not reach them.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# No worker processes: on a CPU test machine forking costs more than loading.
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=1)
