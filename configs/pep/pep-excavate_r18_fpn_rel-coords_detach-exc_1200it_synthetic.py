# Tab. 2, row "+excavating", of
# pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py (the excavator
# trained on top of the base network); its Baseline and "+purifying" rows
# are those of pep_r18_fpn_rel-coords_1200it_synthetic.py (no excavator
# there, so the switch changes nothing).
_base_ = './pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py'

model = dict(mask_head=dict(purifier=None))
