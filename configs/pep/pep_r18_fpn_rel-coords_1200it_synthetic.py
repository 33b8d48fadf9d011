# PEP on the synthetic recipe with relative-coordinate channels appended to
# the general feature B per descriptor (issue #13, review A1): Eq. 6 stays
# one 1x1 dynamic conv, now over [B, rx, ry, rx^2, ry^2, rx*ry], the offsets
# of every pixel from the descriptor's own position in units of its level's
# largest object size, so that a descriptor can say *which* of several
# touching look-alike objects it means (see PEPHead's ``rel_coords``).
# Everything else is pep_r18_fpn_1200it_synthetic.py.
_base_ = './pep_r18_fpn_1200it_synthetic.py'

model = dict(mask_head=dict(rel_coords='quadratic'))
