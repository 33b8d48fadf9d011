# SipMask-VIS R-50 on YouTube-VIS 2019 with local AP: the val ground truth
# is private, so train on most of the train videos and evaluate on the
# rest. Make the split (every 10th video, deterministic) with:
#   python tools/dataset_converters/split_youtubevis.py \
#       data/youtube_vis_2019/annotations/youtube_vis_2019_train.json \
#       --every 10
# which writes youtube_vis_2019_train_sub.json and
# youtube_vis_2019_train_val.json next to it (both in train/JPEGImages).
_base_ = './sipmask-vis_r50-caffe_fpn_gn-head_1x_youtubevis2019.py'

train_dataloader = dict(
    dataset=dict(ann_file='annotations/youtube_vis_2019_train_sub.json'))
val_dataloader = dict(
    dataset=dict(
        ann_file='annotations/youtube_vis_2019_train_val.json',
        data_prefix=dict(img_path='train/JPEGImages')))
test_dataloader = val_dataloader
val_evaluator = dict(format_only=False, outfile_prefix=None)
test_evaluator = val_evaluator
