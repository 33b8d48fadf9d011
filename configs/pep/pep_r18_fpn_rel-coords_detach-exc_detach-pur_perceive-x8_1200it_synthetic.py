# pep_r18_fpn_rel-coords_detach-exc_detach-pur_1200it_synthetic.py with the
# perceiving loss (the paper's softmax CE, averaged over every cell of every
# level) weighted 8 instead of 1 (issue #13, docs/pep_accuracy.md 7.10).
# Why: on the headline's checkpoints the best-scored candidate whose mask
# matches a GT at IoU >= 0.5 has the GT's class only 31-46 % of the time;
# the masks find the objects, the classes do not. The CE mean is taken over
# ~9k cells per batch of which ~4 % are positive, so a positive cell's class
# gradient is ~1/20 of what SOLOv2's focal loss (normalised by the number of
# positives) gives it.
_base_ = './pep_r18_fpn_rel-coords_detach-exc_detach-pur_1200it_synthetic.py'

model = dict(mask_head=dict(loss_perceive=dict(loss_weight=8.0)))
