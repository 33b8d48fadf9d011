# pep_r18_fpn_rel-coords_detach-exc_detach-pur_1200it_synthetic.py with a
# wider general feature B (issue #13): the paper's descriptor size D = 256
# (§4.1) instead of 128, and B's internal width 128 instead of 64 (SOLOv2's
# proportions), to test whether the masks of small crowded objects are
# limited by what one 1x1 dynamic conv over B can express. Measured at 600
# iterations: not a gain (-1.2 mask AP on three runs; docs/pep_accuracy.md
# section 7.9).
_base_ = './pep_r18_fpn_rel-coords_detach-exc_detach-pur_1200it_synthetic.py'

model = dict(
    mask_head=dict(
        mask_feature_head=dict(feat_channels=128, out_channels=256)))
