# SipMask with caffe ResNet-50 + FPN P3-P7 (P6/P7 from P5 after a ReLU) and
# the head of the official mmdet-1.x code: GN towers of 256 channels (4
# box convs, 3 classification convs + the box-driven deformable
# alignment), 4 x 32 spatial coefficients, 32 bases at stride 2 from the
# box tower of P3-P5.
# Model only: `custom_imports` and the runtime hooks come with
# configs/_base_/default_runtime.py.
_base_ = './r50-caffe_fpn_p3-p7.py'

model = dict(
    type='SipMask',
    bbox_head=dict(
        type='SipMaskHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        num_bases=32,
        basis_channels=512,
        basis_stride=2,
        deform_groups=4,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        center_sampling=True,
        center_sample_radius=1.5,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(
        nms_pre=1000,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
        mask_thr=0.4))
