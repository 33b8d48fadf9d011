# pep_r18_fpn_1200it_synthetic.py with the paper's purifying at inference
# (§3.4): every link the graph makes merges, no re-scoring, no Matrix NMS.
# Training is the same, so compare.py re-tests the other config's finished
# checkpoints for this one instead of training again.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(
    test_cfg=dict(
        purify=dict(mask_iou_thr=0.0, rescore=False, matrix_nms=False)))
