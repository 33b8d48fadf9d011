# pep_r18_fpn_rel-coords_detach-exc_detach-pur_perceive-x8_1200it_synthetic.py
# with the perceiving loss weighted 16 instead of 8: is 8 the right weight?
# (docs/pep_accuracy.md section 7.10).
_base_ = ('./pep_r18_fpn_rel-coords_detach-exc_detach-pur_perceive-x8_'
          '1200it_synthetic.py')

model = dict(mask_head=dict(loss_perceive=dict(loss_weight=16.0)))
