# mmdet's Mask R-CNN on the shared synthetic image recipe: the detector of
# masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py, exactly
# (../_base_/models/mask-rcnn_r18_fpn_synthetic.py), on the data, schedule
# and runtime of configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py (the
# embedded image set, whose images are drawn as the clips' frames: the
# same backgrounds, shapes, 3 classes and 128 px; AdamW, batch 8, 1200
# iterations). MaskTrack R-CNN starts from its weights, as mmdet's starts
# from a COCO Mask R-CNN (README.md).
_base_ = [
    '../_base_/models/mask-rcnn_r18_fpn_synthetic.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/schedule_synthetic.py',
    '../_base_/synthetic_runtime.py'
]
