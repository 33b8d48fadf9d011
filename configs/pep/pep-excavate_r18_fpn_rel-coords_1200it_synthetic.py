# Tab. 2, row "+excavating", of
# pep_r18_fpn_rel-coords_1200it_synthetic.py (relative-coordinate
# channels in B), as pep-excavate_r18_fpn_1200it_synthetic.py is of
# pep_r18_fpn_1200it_synthetic.py.
_base_ = './pep_r18_fpn_rel-coords_1200it_synthetic.py'

model = dict(mask_head=dict(purifier=None))
