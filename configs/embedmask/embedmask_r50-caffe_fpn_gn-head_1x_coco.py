# EmbedMask R-50 1x on COCO, the official code's `embed_mask_R50_1x` recipe:
# 90k iterations of 16 images (12 epochs of train2017), lr x0.1 at 60k and
# 80k iterations (epochs 8 and 11), constant warm-up at 1/3 of the lr for
# 500 iterations, SGD lr 0.01, weight decay 1e-4, bias lr x2 and no weight
# decay on biases, no gradient clipping; 800 x 1333 input.
#
# GPUs and batch: officially 4 GPUs x 4 images = 16 images at lr 0.01 (the
# official README's training command, "on 4 GPUs with batchsize 16",
# `--nproc_per_node=4 ... SOLVER.IMS_PER_BATCH 16`, yinghdb/EmbedMask
# README.md:62-70 at be2885b; `BASE_LR: 0.01`, `IMS_PER_BATCH: 16` (the
# total, maskrcnn-benchmark's) in configs/embed_mask/embed_mask_R50_1x.yaml).
# The README of the current version (e9d6142 on) keeps "on 4 GPUs with
# batchsize 16" over a command of 2 GPUs and `SOLVER.IMS_PER_BATCH 8`,
# which overrides the yaml's 16 at lr 0.01 and 90k iterations; the yaml's
# 16 (12 epochs) is followed here. Here 4 per GPU: run it on 4 GPUs, or on
# N GPUs with `--auto-scale-lr` (lr 0.01 x 4N / 16).
_base_ = [
    '../_base_/models/embedmask_r50-caffe_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_fcos-official.py',
    '../_base_/default_runtime.py'
]

train_dataloader = dict(batch_size=4)  # x 4 GPUs = 16, the official total
auto_scale_lr = dict(enable=False, base_batch_size=16)
