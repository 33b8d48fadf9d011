# condinst_r18_fpn_1200it_synthetic.py with mmdet's own settings where that
# config adapts them to 128 px images: FCOS's default regress_ranges (the
# adapted ones are scaled like PEP's scale_ranges) and CondInst's default
# test_cfg (nms_pre 1000, max_per_img 100, against 200 and 50). The peer is
# run at whichever of the two scores better on the val split, over seeds;
# configs/condinst/README.md has both.
_base_ = './condinst_r18_fpn_1200it_synthetic.py'

model = dict(
    bbox_head=dict(
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512),
                        (512, 1e8))),
    test_cfg=dict(nms_pre=1000, max_per_img=100))
