# mmdet's SOLOv2 with PEP's synthetic setting: same data, schedule, runtime,
# backbone, neck, levels, grids and head widths as
# configs/pep/pep_r18_fpn_1200it_synthetic.py (only the head differs).
_base_ = '../pep/pep_r18_fpn_1200it_synthetic.py'

model = dict(
    type='SOLOv2',
    mask_head=dict(
        _delete_=True,
        type='SOLOV2Head',
        num_classes={{_base_.model.mask_head.num_classes}},
        in_channels={{_base_.model.mask_head.in_channels}},
        feat_channels={{_base_.model.mask_head.feat_channels}},
        stacked_convs={{_base_.model.mask_head.stacked_convs}},
        strides={{_base_.model.mask_head.strides}},
        scale_ranges={{_base_.model.mask_head.scale_ranges}},
        pos_scale={{_base_.model.mask_head.pos_scale}},
        num_grids={{_base_.model.mask_head.num_grids}},
        cls_down_index=0,
        mask_feature_head={{_base_.model.mask_head.mask_feature_head}},
        norm_cfg={{_base_.model.mask_head.norm_cfg}},
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0)),
    test_cfg=dict(
        _delete_=True,
        nms_pre=200,
        score_thr=0.1,
        mask_thr=0.5,
        filter_thr=0.05,
        kernel='gaussian',
        sigma=2.0,
        max_per_img=50))
