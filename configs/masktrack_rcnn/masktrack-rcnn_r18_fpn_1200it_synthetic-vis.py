# mmdet's MaskTrack R-CNN (masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_
# youtubevis2019.py: its Mask R-CNN, RoITrackHead and MaskTrackRCNNTracker)
# on exactly SipMask-VIS's synthetic recipe: ResNet-18 with PEP's input
# normalisation, 128-channel FPN, the embedded video set, AdamW for 1200
# iterations on batches of 4 clips. Only sizes change: backbone, FPN and
# head channels, 3 classes (../_base_/models/mask-rcnn_r18_fpn_synthetic.py,
# the detector of the image Mask R-CNN mask-rcnn_r18_fpn_1200it_synthetic.py,
# whose weights it starts from: `load_from` below).
_base_ = [
    '../_base_/models/mask-rcnn_r18_fpn_synthetic.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

detector = _base_.model
detector.pop('data_preprocessor')
del _base_.model

model = dict(
    type='MaskTrackRCNN',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    detector=detector,
    track_head=dict(
        type='RoITrackHead',
        roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=128,
            featmap_strides=[4, 8, 16, 32]),
        embed_head=dict(
            type='RoIEmbedHead',
            num_fcs=2,
            roi_feat_size=7,
            in_channels=128,
            fc_out_channels=1024),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=128,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    tracker=dict(
        type='MaskTrackRCNNTracker',
        match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0),
        num_frames_retain=20))

default_hooks = dict(
    visualization=dict(type='TrackVisualizationHook', draw=False))
visualizer = dict(
    type='TrackLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
del detector
# Started from the synthetic image Mask R-CNN (seed 0 of compare.py's
# protocol of mask-rcnn_r18_fpn_1200it_synthetic.py: the same frames, the
# same schedule), as mmdet's MaskTrack R-CNN starts from a COCO Mask R-CNN:
# its weights in this model's names (`detector.*`), the track head from
# scratch. compare_vis.py makes the file when it is missing
# (mmdet_pep_tools/image_init.py), as does:
#   python tools/analysis_tools/compare_vis.py \
#       configs/masktrack_rcnn/masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py \
#       --init-only
# tools/train.py stops naming the file and that command while it is
# missing; `--cfg-options load_from=None` trains from scratch (the earlier
# recipe).
image_init = dict(
    name='Mask-RCNN',
    config='configs/masktrack_rcnn/mask-rcnn_r18_fpn_1200it_synthetic.py',
    seed=0)
load_from = 'checkpoints/mask-rcnn_r18_fpn_1200it_synthetic_seed0_vis.pth'
