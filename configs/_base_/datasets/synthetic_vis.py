# The embedded synthetic video set (mmdet_pep.datasets.synthetic_video):
# clips of 8 frames of 128 px in which look-alike shapes approach, touch,
# occlude one another, enter and leave. Make it with:
#   python tools/dataset_converters/make_synthetic_vis.py data/synthetic_vis
# mmdet's YouTube-VIS pipeline (configs/_base_/datasets/youtube_vis.py) at
# the set's size: a key frame and one reference frame from the same clip,
# the same random resize and flip on both. Checked data
# (mmdet_pep/datasets/video_checks.py): a file without videos, a missing
# frame, a frame of another size fail naming the clip and the frame.
dataset_type = 'CheckedYouTubeVISDataset'
data_root = 'data/synthetic_vis/'
metainfo = dict(
    classes=('disc', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75)])
backend_args = None
image_size = (128, 128)

train_pipeline = [
    dict(
        type='UniformRefFrameSample',
        num_ref_imgs=1,
        frame_range=100,
        filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='CheckedLoadFrameFromFile', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=image_size, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='CheckedLoadFrameFromFile', backend_args=backend_args),
            dict(type='Resize', scale=image_size, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    # Every frame of every clip is a key frame once per epoch (mmdet's
    # MaskTrack R-CNN sampling); the iteration loop restarts it.
    sampler=dict(type='TrackImgSampler'),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version='2019',
        metainfo=metainfo,
        ann_file='annotations/youtube_vis_train.json',
        data_prefix=dict(img_path='train'),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version='2019',
        metainfo=metainfo,
        ann_file='annotations/youtube_vis_val.json',
        data_prefix=dict(img_path='val'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
# The held-out test clips (their own seed), never used to choose anything.
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version='2019',
        metainfo=metainfo,
        ann_file='annotations/youtube_vis_test.json',
        data_prefix=dict(img_path='test'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

# The ground truth is local: YouTube-VIS AP computed here (mmdet's
# YouTubeVISMetric and vendored evaluation, not a server submission; the
# PEP variant scores a model without any prediction as 0 instead of
# failing).
val_evaluator = dict(
    type='YouTubeVISIDSwitchMetric',
    metric='youtube_vis_ap',
    format_only=False)
test_evaluator = val_evaluator
