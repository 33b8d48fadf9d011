# pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py with the purifier
# also trained on top of the base network (issue #13): its graph loss sees
# the descriptors detached, so the base network is trained by exactly the
# Baseline's losses and both mechanisms learn on top of it (see PEPHead's
# ``detach_purifier``; with the purifier's loss reaching it, PEP's base
# network scores 1.2 mask AP below the Baseline trained alone on the dense
# synthetic variant at 600 iterations).
_base_ = './pep_r18_fpn_rel-coords_detach-exc_1200it_synthetic.py'

model = dict(mask_head=dict(detach_purifier=True))
