# Tab. 2, row "Baseline + excavating".
_base_ = './pep_r101_fpn_3x_coco.py'

model = dict(mask_head=dict(purifier=None))
