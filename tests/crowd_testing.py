"""Scene 1 of the crowd-metric tests: a COCO file of six rectangles, and
the predictions, evaluation and checks around it.

Scene 1 (image 1, 40 x 60 px; masks are rectangles x1:x2, y1:y2):

    A square  2:10,  2:10  touches B (edge to edge)
    B square 10:18,  2:10  touches A
    C bar    18:26,  2:10  touches B, but B is a square
    D square  2:10, 14:22  one empty row (22) above E
    E square  2:10, 23:31
    F square 40:48, 28:36  far from every square

plus image 2, 40 x 60 px and empty (no object, no prediction).

Crowdedness (dilation by d with a (2d+1)-square: Chebyshev distance <= d):
A-B are at distance 1 (adjacent pixels), D-E at distance 2 (row 21 to row
23), so d=2: crowded A, B, D, E, isolated C, F; d=1: crowded A, B,
isolated C, D, E, F; d=0 (overlap only): all isolated.
"""
import numpy as np
import torch
from mmengine.fileio import dump
from pycocotools import mask as mask_utils

from mmdet.registry import METRICS
from mmdet_pep.evaluation import CrowdCocoMetric

CLASSES = ('square', 'bar')
CAT_IDS = (2, 5)  # non-contiguous, as in test_coco_metric_gt.py
SHAPE = (40, 60)
SQUARE, BAR = 0, 1

# name -> (label, (x1, x2, y1, y2))
SCENE1 = dict(
    A=(SQUARE, (2, 10, 2, 10)),
    B=(SQUARE, (10, 18, 2, 10)),
    C=(BAR, (18, 26, 2, 10)),
    D=(SQUARE, (2, 10, 14, 22)),
    E=(SQUARE, (2, 10, 23, 31)),
    F=(SQUARE, (40, 48, 28, 36)),
)
# A square prediction on the background: IoU 0 with every square.
BACKGROUND = (SQUARE, (50, 58, 2, 10))


def rect_mask(x1, x2, y1, y2, shape=SHAPE):
    mask = np.zeros(shape, bool)
    mask[y1:y2, x1:x2] = True
    return mask


def rle_json(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


def write_scene1(path):
    annotations = []
    for name, (label, (x1, x2, y1, y2)) in SCENE1.items():
        mask = rect_mask(x1, x2, y1, y2)
        annotations.append(
            dict(
                id=len(annotations) + 1,
                image_id=1,
                category_id=CAT_IDS[label],
                iscrowd=0,
                area=int(mask.sum()),
                bbox=[x1, y1, x2 - x1, y2 - y1],
                segmentation=rle_json(mask)))
    dump(
        dict(
            images=[
                dict(id=i, file_name=f'{i}.png', height=SHAPE[0],
                     width=SHAPE[1]) for i in (1, 2)
            ],
            annotations=annotations,
            categories=[
                dict(id=i, name=n) for i, n in zip(CAT_IDS, CLASSES)
            ]), path)
    return path


def scene1_ann_ids(names):
    """Annotation ids of scene-1 objects (ids follow SCENE1's order)."""
    order = list(SCENE1)
    return {order.index(n) + 1 for n in names}


def scene1_samples(preds):
    """Data samples as CocoMetric.process takes them.

    preds: (label, (x1, x2, y1, y2), score) of image 1; image 2 gets no
    prediction.
    """
    def instances(items):
        masks = [rect_mask(*geom) for _, geom, _ in items]
        return dict(
            bboxes=torch.tensor([[x1, y1, x2, y2]
                                 for _, (x1, x2, y1, y2), _ in items],
                                dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([s for _, _, s in items],
                                dtype=torch.float32),
            labels=torch.tensor([label for label, _, _ in items],
                                dtype=torch.long),
            masks=torch.from_numpy(
                np.stack(masks) if masks else np.zeros((0, ) + SHAPE,
                                                       bool)))

    return [
        dict(img_id=1, ori_shape=SHAPE, pred_instances=instances(preds)),
        dict(img_id=2, ori_shape=SHAPE, pred_instances=instances([])),
    ]


def scene1_pred(name, score):
    label, geom = SCENE1[name]
    return (label, geom, score)


def evaluate_metric(ann_file, samples, metric=('bbox', 'segm'),
              type='CrowdCocoMetric', **kwargs):
    crowd_metric = METRICS.build(
        dict(
            type=type,
            ann_file=ann_file,
            metric=list(metric),
            **kwargs))
    assert isinstance(crowd_metric, CrowdCocoMetric)
    crowd_metric.dataset_meta = dict(classes=CLASSES)
    crowd_metric.process({}, samples)
    return crowd_metric.evaluate(size=len(samples))


TASKS = ('bbox', 'segm')


def check_tasks(results, expected):
    for task in TASKS:
        for key, value in expected.items():
            assert results[f'coco/{task}_{key}'] == value, (task, key)



# Case 1: B (crowded) missed, every other object found once. F (isolated)
# has the highest score, so a crowded evaluation that counted it as a false
# positive (instead of ignoring it) would put it first in the ranking.
MISSED_B = [
    scene1_pred('F', 0.95),
    scene1_pred('A', 0.9),
    scene1_pred('D', 0.8),
    scene1_pred('E', 0.7),
    scene1_pred('C', 0.6),
]
