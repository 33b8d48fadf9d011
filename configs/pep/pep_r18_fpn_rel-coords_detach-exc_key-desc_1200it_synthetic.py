# pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py with the mined
# descriptors learnt from the key pixels' predicted descriptors as well
# (issue #13): the mining MLP and the key-pixel classifier see the instance
# descriptor the descriptor branch predicts at each key pixel, on the grid
# of the original's level (see PEPExcavator's ``key_features``; with the
# paper's literal input, the original descriptor and the coordinates, 90 %
# of the mined masks match no GT on the synthetic crowds).
_base_ = './pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py'

model = dict(mask_head=dict(excavator=dict(key_features='descriptor')))
