# EmbedMask with caffe ResNet-50 + FPN P3-P7 (P6/P7 from P5 after a ReLU) and
# the "FCOS imprv" head of the official code's new version: 4-conv GN towers
# of 256 channels, 16-d embeddings, the pixel branch on P3 at stride 4.
# Model only: `custom_imports` and the runtime hooks come with
# configs/_base_/default_runtime.py.
_base_ = './r50-caffe_fpn_p3-p7.py'

model = dict(
    type='EmbedMask',
    bbox_head=dict(
        type='EmbedMaskHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        embed_dim=16,
        position_divisor=100.,
        prior_margin=2.,
        num_mask_convs=4,
        mask_stride=4,
        sample_in_mask=True,
        loss_mask=dict(type='LovaszHingeLoss', loss_weight=0.5)),
    test_cfg=dict(
        nms_pre=1000,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        mask_thr=0.53,
        box_padding=2))
