# COCO instance segmentation (mmdet's base: val2017 for val and test) whose
# test evaluator also reports the recall on Occluded COCO and Separated COCO
# (Zhan, Xie, Zisserman, "A Tri-Layer Plugin to Improve Occluded Detection",
# BMVC 2022, arXiv 2210.10046), with mmdet's CocoOccludedSeparatedMetric:
# everything CocoMetric reports plus `occluded_recall` and
# `separated_recall` (percent of the subsets' masks found at mask IoU >=
# iou_thr by a same-class prediction scored >= score_thr).
#
# The two subset files are NOT downloaded at run time: the metric's defaults
# are URLs, which this config replaces by local files. Get them once from the
# paper's release (https://github.com/Championchess/A-Tri-Layer-Plugin-to-
# Improve-Occluded-Detection, "Occluded COCO" and "Separated COCO"; the files
# mmdet's defaults point to are
# https://www.robots.ox.ac.uk/~vgg/research/tpod/datasets/occluded_coco.pkl
# and .../separated_coco.pkl) and put them next to the COCO annotations:
#
#   data/coco/annotations/instances_val2017.json
#   data/coco/annotations/occluded_coco.pkl
#   data/coco/annotations/separated_coco.pkl
#
# Both subsets are drawn from val2017 and are matched to predictions by the
# image's file name, so the test set must be val2017 (mmdet's default here).
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

data_root = 'data/coco/'

test_evaluator = dict(
    _delete_=True,
    type='CocoOccludedSeparatedMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    occluded_ann=data_root + 'annotations/occluded_coco.pkl',
    separated_ann=data_root + 'annotations/separated_coco.pkl',
    score_thr=0.3,  # the metric's defaults, spelt out
    iou_thr=0.75,
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=None)
