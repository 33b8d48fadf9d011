# PEP on the embedded crowded-objects set with the paper's mask loss
# (§3.5: cross-entropy, delta = 1) instead of the demo's Dice, to compare
# the two losses on the same data and schedule.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(
    mask_head=dict(
        loss_mask=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)))
