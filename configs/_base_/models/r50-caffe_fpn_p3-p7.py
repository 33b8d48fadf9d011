# The backbone and neck of the official FCOS-based codes (EmbedMask's and
# SipMask's): caffe ResNet-50 (BGR input, ImageNet mean, std 1, stage 1
# frozen, BN frozen) and FPN P3-P7 with P6/P7 from P5 after a ReLU; masks
# padded with the image to a multiple of 32. The detector type and its head
# come with the method's base.
model = dict(
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
        relu_before_extra_convs=True))
