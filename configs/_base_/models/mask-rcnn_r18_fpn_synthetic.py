# mmdet's Mask R-CNN (mmdet::_base_/models/mask-rcnn_r50_fpn.py) at the
# sizes of the shared synthetic recipe: ResNet-18 from scratch, 128-channel
# FPN, RPN and RoI heads, 3 classes (mmdet's anchors of 32-512 px at
# strides 4-64 are kept; low-quality matching gives the smallest objects
# theirs), and the proposal and sampling numbers of mmdet's MaskTrack R-CNN
# (masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py), which
# suit 128 px frames with a few objects. One detector for both models that
# use it: the image Mask R-CNN of
# ../../masktrack_rcnn/mask-rcnn_r18_fpn_1200it_synthetic.py and the
# `detector` of MaskTrack R-CNN, which starts from the image model's
# weights.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        depth=18, init_cfg=None, norm_eval=False, frozen_stages=-1),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        mask_roi_extractor=dict(out_channels=128),
        bbox_head=dict(num_classes=3, in_channels=128),
        mask_head=dict(
            num_classes=3, in_channels=128, conv_out_channels=128)),
    # mmdet's MaskTrack R-CNN settings.
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=200),
        rcnn=dict(score_thr=0.01, max_per_img=50)))
