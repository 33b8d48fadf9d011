# SipMask R-50 1x on COCO, the official `sipmask_r50_caffe_fpn_gn_1x`
# recipe: 12 epochs, lr x0.1 after epochs 8 and 11, constant warm-up at 1/3
# of the lr for 500 iterations, SGD lr 0.01, weight decay 1e-4, bias lr x2
# and no weight decay on biases, no gradient clipping; 800 x 1333 input,
# flip.
#
# GPUs and batch: officially 4 GPUs x 4 images = 16 images at lr 0.01 (the
# official README's training command, `dist_train.sh ... 4`,
# JialeCao001/SipMask README.md:71; `imgs_per_gpu=4`, `lr=0.01` in
# SipMask-mmdetection/configs/sipmask/sipmask_r50_caffe_fpn_gn_1x.py).
# This config has the same 4 per GPU: run it on 4 GPUs, or on N GPUs with
# `--auto-scale-lr` (lr 0.01 x 4N / 16).
_base_ = [
    '../_base_/models/sipmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_fcos-official.py',
    '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=4)  # x 4 GPUs = 16, the official total
auto_scale_lr = dict(enable=False, base_batch_size=16)
