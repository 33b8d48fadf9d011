# pep_r18_fpn_rel-coords_detach-exc_detach-pur_perceive-x16_1200it_synthetic.py
# with the perceiving loss weighted 32 instead of 16: where does the gain
# of a larger weight stop? (docs/pep_accuracy.md section 7.10; about 4 % of
# the cells are positive, so a weight of ~25 gives a positive cell the class
# gradient of a loss divided by the number of positives, as SOLOv2's is).
_base_ = ('./pep_r18_fpn_rel-coords_detach-exc_detach-pur_perceive-x16_'
          '1200it_synthetic.py')

model = dict(mask_head=dict(loss_perceive=dict(loss_weight=32.0)))
