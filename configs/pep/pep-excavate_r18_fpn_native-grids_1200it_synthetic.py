# Tab. 2, row "+excavating", of
# pep_r18_fpn_native-grids_1200it_synthetic.py (grids no larger than their
# feature maps at 128 px), as pep-excavate_r18_fpn_1200it_synthetic.py is of
# pep_r18_fpn_1200it_synthetic.py.
_base_ = './pep_r18_fpn_native-grids_1200it_synthetic.py'

model = dict(mask_head=dict(purifier=None))
