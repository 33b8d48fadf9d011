# Tab. 2, row "Baseline + excavating", on the embedded crowded-objects set.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(purifier=None))
