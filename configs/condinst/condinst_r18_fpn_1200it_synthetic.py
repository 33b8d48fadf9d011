# mmdet's CondInst with PEP's synthetic setting: same data, schedule,
# runtime, backbone and head widths as
# configs/pep/pep_r18_fpn_1200it_synthetic.py. The neck keeps CondInst's
# own P3-P7 layout (its FCOS branch needs it), at PEP's width.
_base_ = '../pep/pep_r18_fpn_1200it_synthetic.py'

model = dict(
    type='CondInst',
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels={{_base_.model.mask_head.in_channels}},
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='CondInstBboxHead',
        num_params=169,
        num_classes={{_base_.model.mask_head.num_classes}},
        in_channels={{_base_.model.mask_head.in_channels}},
        stacked_convs={{_base_.model.mask_head.stacked_convs}},
        feat_channels={{_base_.model.mask_head.feat_channels}},
        strides=[8, 16, 32, 64, 128],
        # FCOS's ranges scaled to 128 px images like PEP's scale_ranges.
        regress_ranges=((-1, 16), (16, 32), (32, 64), (64, 128), (128, 1e8)),
        norm_on_bbox=True,
        centerness_on_reg=True,
        dcn_on_last_conv=False,
        center_sampling=True,
        conv_bias=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        _delete_=True,
        type='CondInstMaskHead',
        num_layers=3,
        feat_channels=8,
        size_of_interest=8,
        mask_out_stride=4,
        max_masks_to_train=300,
        mask_feature_head=dict(
            in_channels={{_base_.model.mask_head.in_channels}},
            feat_channels={{_base_.model.mask_head.mask_feature_head.feat_channels}},
            start_level=0,
            end_level=2,
            out_channels=8,
            mask_stride=8,
            num_stacked_convs=4,
            norm_cfg=dict(type='BN', requires_grad=True)),
        loss_mask=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            eps=5e-6,
            loss_weight=1.0)),
    test_cfg=dict(
        _delete_=True,
        nms_pre=200,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=50,
        mask_thr=0.5))
