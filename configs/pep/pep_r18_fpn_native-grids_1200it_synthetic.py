# PEP on the synthetic recipe with grids no larger than their feature maps
# (the speed issue's candidate): at 128 px the levels' maps after SOLO's
# resampling are 16, 16, 8, 4 and 4 cells wide, so the perceiving and
# descriptor towers run on 608 cells instead of the 1144 of the upsampled
# 24/18/12/8/6 grids (about half their cost), and the candidates come from
# cells of 8-32 px instead of 5.3-21 px. Everything else is
# pep_r18_fpn_1200it_synthetic.py. The accuracy this costs in crowds is
# what the comparison over seeds decides (docs/results/).
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(num_grids=[16, 16, 8, 4, 4]))
