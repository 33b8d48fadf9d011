# SpatialEmbeddings (Neven et al., CVPR 2019) as released for Cityscapes
# cars (davyneven/SpatialEmbeddings, src/train_config.py and
# src/models/BranchedERFNet.py): ERFNet's encoder trained from scratch, two
# ERFNet decoders (2 offsets + 1 sigma; one seed map per class), images in
# [0, 1] without mean/std normalisation.
model = dict(
    type='SpatialEmbeddings',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        bgr_to_rgb=True,
        pad_size_divisor=8),
    backbone=dict(type='ERFNetEncoder'),
    mask_head=dict(
        type='SpatialEmbHead',
        num_classes=1,
        in_channels=128,
        n_sigma=1,
        grid_unit=1024.,
        loss_mask=dict(
            type='SpatialEmbLoss',
            instance_weight=1.,
            var_weight=10.,
            seed_weight=1.,
            foreground_weight=10.)),
    # The official test script's thresholds (src/test.py, utils.Cluster).
    test_cfg=dict(
        seed_thr=0.9,
        fg_thr=0.5,
        mask_thr=0.5,
        min_pixels=128,
        min_unclaimed=0.5,
        max_centres=1000,
        max_per_img=100))
