# Tab. 2, row "Baseline", of the recommended synthetic recipe: perceiving +
# mask learning; Matrix NMS instead of purifying.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=None, purifier=None))
