# solov2_r18_fpn_1200it_synthetic.py with mmdet's own settings where that
# config adapts them to 128 px images: SOLOv2's default scale_ranges and
# num_grids (the adapted ones are PEP's, scaled to 128 px) and its default
# test_cfg (nms_pre 500, max_per_img 100, against 200 and 50). The peer is
# run at whichever of the two scores better on the val split, over seeds;
# configs/solov2/README.md has both.
_base_ = './solov2_r18_fpn_1200it_synthetic.py'

model = dict(
    mask_head=dict(
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384,
                                                                  2048)),
        num_grids=[40, 36, 24, 16, 12]),
    test_cfg=dict(nms_pre=500, max_per_img=100))
