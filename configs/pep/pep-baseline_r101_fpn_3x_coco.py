# Tab. 2, row "Baseline": perceiving + mask learning; Matrix NMS instead of
# purifying.
_base_ = './pep_r101_fpn_3x_coco.py'

model = dict(mask_head=dict(excavator=None, purifier=None))
