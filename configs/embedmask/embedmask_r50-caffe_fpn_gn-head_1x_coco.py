# EmbedMask R-50 1x on COCO, the official code's `embed_mask_R50_1x` recipe:
# 90k iterations of 16 images (12 epochs of train2017), lr x0.1 at 60k and
# 80k iterations (epochs 8 and 11), constant warm-up at 1/3 of the lr for
# 500 iterations, SGD lr 0.01, weight decay 1e-4, bias lr x2 and no weight
# decay on biases, no gradient clipping; 800 x 1333 input.
_base_ = [
    '../_base_/models/embedmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_fcos-official.py',
    '../_base_/default_runtime.py'
]
