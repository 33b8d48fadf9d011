# PEP with ResNet-50 + FPN (paper §3.1, §4.1): five pyramid levels, towers of
# four 3x3 convs with 256 channels, 256-d descriptors and general feature B.
# Model only: `custom_imports` (which registers PEP) and the runtime hooks
# come with configs/_base_/default_runtime.py.
model = dict(
    type='PEP',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        # Offline: `--cfg-options model.backbone.init_cfg=None` or a local
        # checkpoint path instead of torchvision://.
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        num_outs=5),
    mask_head=dict(
        type='PEPHead',
        num_classes=80,
        in_channels=256,
        feat_channels=256,
        stacked_convs=4,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384,
                                                                 2048)),
        pos_scale=0.2,
        num_grids=[40, 36, 24, 16, 12],
        mask_feature_head=dict(
            feat_channels=128,
            start_level=0,
            end_level=3,
            out_channels=256,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        excavator=dict(
            type='PEPExcavator',
            feat_channels=16,
            hidden_channels=16,
            near_ratio=1.5,
            center_radius=1,
            max_keys_train=8,
            num_neg_keys=2,
            loss_excavate=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),  # alpha in Eq. 8
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False,
                loss_weight=1.0)),  # beta
        purifier=dict(
            type='PEPPurifier',
            embed_channels=128,
            max_descriptors=30,
            merge='mean',
            loss_graph=dict(
                type='CrossEntropyLoss', use_sigmoid=True,
                loss_weight=1.0)),  # gamma
        loss_perceive=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True,
            loss_weight=1.0),  # delta; the paper's CE
        max_originals_train=16,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
    test_cfg=dict(
        nms_pre=500,
        score_thr=0.1,
        mask_thr=0.5,
        max_per_img=100,
        excavate=dict(max_originals=30, key_thr=0.3, max_keys=4),
        purify=dict(group_thr=0.5, class_agnostic=False),
        # Matrix NMS, used only when the purifier is off (the Baseline).
        kernel='gaussian',
        sigma=2.0,
        filter_thr=0.05))
