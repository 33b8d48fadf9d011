# mmdet's SOLOv2 with ResNet-50 + FPN, as a model base: the `model` of
# mmdet's own config, unchanged, and nothing else of it. That config also
# carries COCO data, the 1x schedule and mmdet's runtime; mmengine refuses
# two bases that define the same key, so they are dropped here (mmdet's own
# configs drop inherited keys the same way, e.g. `del _base_.model` in
# configs/qdtrack/), and a config combines this base with the data,
# schedule and runtime bases it wants, as with models/pep_r50_fpn.py.
_base_ = 'mmdet::solov2/solov2_r50_fpn_1x_coco.py'

for __key in [key for key in _base_ if key != 'model']:
    del _base_[__key]
