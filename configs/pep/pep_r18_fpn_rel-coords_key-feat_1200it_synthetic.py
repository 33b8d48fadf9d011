# pep_r18_fpn_rel-coords_1200it_synthetic.py with the excavator's key-pixel
# features (issue #13): the mined descriptor and its key-pixel class are
# learnt from the excavation feature at the key pixel as well as from the
# original descriptor and the coordinates (see PEPExcavator's
# ``key_features``; the paper's literal input leaves the key-pixel
# classifier at chance on the synthetic crowds).
_base_ = './pep_r18_fpn_rel-coords_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=dict(key_features=True)))
