# EmbedMask with caffe ResNet-50 + FPN P3-P7 (P6/P7 from P5 after a ReLU) and
# the "FCOS imprv" head of the official code's new version: 4-conv GN towers
# of 256 channels, 16-d embeddings, the pixel branch on P3 at stride 4.
# Model only: `custom_imports` and the runtime hooks come with
# configs/_base_/default_runtime.py.
model = dict(
    type='EmbedMask',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[102.9801, 115.9465, 122.7717],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        # Offline: `--cfg-options model.backbone.init_cfg=None` or a local
        # checkpoint path instead of open-mmlab://.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron/resnet50_caffe')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
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
