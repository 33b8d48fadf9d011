# Tab. 2, row "Baseline", of
# pep_r18_fpn_native-grids_1200it_synthetic.py (grids no larger than their
# feature maps at 128 px), as pep-baseline_r18_fpn_1200it_synthetic.py is of
# pep_r18_fpn_1200it_synthetic.py.
_base_ = './pep_r18_fpn_native-grids_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=None, purifier=None))
