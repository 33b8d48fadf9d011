# Tab. 2, row "Baseline + purifying", of the recommended synthetic recipe.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=None))
