# PEP on the synthetic recipe with SOLOv2's perceiving loss (issue #13,
# hypothesis "recall in the base network"): C sigmoid semantic maps with
# focal loss (gamma 2, alpha 0.25) summed over cells and divided by the
# number of positive cells + 1, instead of the paper's softmax CE over C+1
# classes averaged over every cell (~1.1k per image at 128 px, 1-2 %
# positive). Everything else is pep_r18_fpn_1200it_synthetic.py.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(
    mask_head=dict(
        loss_perceive=dict(
            _delete_=True,
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0)))
