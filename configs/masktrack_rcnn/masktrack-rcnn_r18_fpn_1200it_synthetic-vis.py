# mmdet's MaskTrack R-CNN (masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_
# youtubevis2019.py: its Mask R-CNN, RoITrackHead and MaskTrackRCNNTracker)
# on exactly SipMask-VIS's synthetic recipe: ResNet-18 from scratch with
# PEP's input normalisation, 128-channel FPN, the embedded video set, AdamW
# for 1200 iterations on batches of 4 clips. Only sizes change: backbone,
# FPN and head channels, 3 classes (mmdet's anchors of 32-512 px at strides
# 4-64 are kept; low-quality matching gives the smallest objects theirs).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]

detector = _base_.model
detector.pop('data_preprocessor')
detector.backbone.update(depth=18, init_cfg=None, norm_eval=False,
                         frozen_stages=-1)
detector.neck.update(in_channels=[64, 128, 256, 512], out_channels=128)
detector.rpn_head.update(in_channels=128, feat_channels=128)
detector.roi_head.bbox_roi_extractor.update(out_channels=128)
detector.roi_head.mask_roi_extractor.update(out_channels=128)
detector.roi_head.bbox_head.update(num_classes=3, in_channels=128)
detector.roi_head.mask_head.update(
    num_classes=3, in_channels=128, conv_out_channels=128)
# mmdet's MaskTrack R-CNN settings.
detector.train_cfg.rpn.sampler.update(dict(num=64))
detector.train_cfg.rpn_proposal.update(dict(nms_pre=200, max_per_img=200))
detector.train_cfg.rcnn.sampler.update(dict(num=128))
detector.test_cfg.rpn.update(dict(nms_pre=200, max_per_img=200))
detector.test_cfg.rcnn.update(dict(score_thr=0.01, max_per_img=50))
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
