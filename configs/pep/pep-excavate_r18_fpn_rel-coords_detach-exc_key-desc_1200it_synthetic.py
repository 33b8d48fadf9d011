# Tab. 2, row "+excavating", of
# pep_r18_fpn_rel-coords_detach-exc_key-desc_1200it_synthetic.py; its
# Baseline and "+purifying" rows are those of
# pep_r18_fpn_rel-coords_1200it_synthetic.py (no excavator there).
_base_ = './pep_r18_fpn_rel-coords_detach-exc_key-desc_1200it_synthetic.py'

model = dict(mask_head=dict(purifier=None))
