# pep_r18_fpn_1200it_synthetic.py with the paper's purifying at inference
# (§3.4): every link the graph makes merges, no re-scoring, no Matrix NMS.
# Training is the same: given under the same model name (work dir) as the
# tuned config, compare.py re-tests that config's finished checkpoints
# instead of training again.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(
    test_cfg=dict(
        purify=dict(mask_iou_thr=0.0, rescore=False, matrix_nms=False)))
