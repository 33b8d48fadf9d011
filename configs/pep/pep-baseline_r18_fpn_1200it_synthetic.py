# Tab. 2, row "Baseline", on the embedded crowded-objects set: perceiving +
# mask learning; Matrix NMS instead of purifying.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=None, purifier=None))
