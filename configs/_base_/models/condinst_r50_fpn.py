# mmdet's CondInst with ResNet-50 + FPN (P3-P7), as a model base: the
# `model` of mmdet's own config, unchanged, and nothing else of it. That
# config also carries COCO data, the 90k-iteration schedule and mmdet's
# runtime; mmengine refuses two bases that define the same key, so they are
# dropped here (mmdet's own configs drop inherited keys the same way, e.g.
# `del _base_.model` in configs/qdtrack/), and a config combines this base
# with the data, schedule and runtime bases it wants, as with
# models/pep_r50_fpn.py.
_base_ = 'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py'

for __key in [key for key in _base_ if key != 'model']:
    del _base_[__key]
