# SipMask R-50 1x on COCO, the official `sipmask_r50_caffe_fpn_gn_1x`
# recipe: 12 epochs of 16 images (officially 4 GPUs x 4; here mmdet's
# 8 GPUs x 2 of its COCO base), lr x0.1 after epochs 8 and
# 11, constant warm-up at 1/3 of the lr for 500 iterations, SGD lr 0.01,
# weight decay 1e-4, bias lr x2 and no weight decay on biases, no gradient
# clipping; 800 x 1333 input, flip.
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_fcos-official.py',
    '../_base_/default_runtime.py'
]
