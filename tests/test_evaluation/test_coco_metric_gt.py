"""mmdet's CocoMetric scores ground truth fed back as predictions.

Expected values come from how pycocotools computes AP: for each class and
IoU threshold it ranks the detections by score, turns the running
precision into its upper envelope (max over all later ranks) and reads it
at the 101 recall points 0, 0.01, ..., 1; recall points the detections
never reach count as precision 0. AP is the mean over those points, the
ten IoU thresholds 0.5:0.05:0.95 and the classes that have ground truth.

Ground truth as predictions is therefore *exactly* 1.0, not merely
>= 0.999: every prediction has IoU exactly 1 with its own object (same
integer pixels, same integer box), so it is a true positive at every IoU
threshold, there is no false positive, recall reaches 1 (tp / num_gt with
tp == num_gt, an exact float) and all 101 envelope points are 1. (The
precision pycocotools divides is tp / (tp + fp + 2**-52), a hair below 1
for a lone true positive; from the second on it rounds to exactly 1 and
the envelope lifts the first; CocoMetric's rounding to three decimals
would hide it anyway.) The interpolation only bites when recall stops short
of 1 or a false positive outranks a true positive; the merged-crowd test
below uses exactly that. Derived fractions are compared after the same
three-decimal rounding.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.fileio import dump, load
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from mmdet.evaluation import CocoMetric
from mmdet_pep.datasets.synthetic import (dataset_statistics,
                                          generate_coco_split)
from mmdet_pep.models.utils import masks_to_boxes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('square', 'disc', 'bar')
# Non-contiguous ids, listed in class order: labels are 0-based and
# contiguous, so a metric that wrote ``label + 1`` as the category would
# put every prediction in the wrong (or a missing) category.
CAT_IDS = (1, 3, 7)


def _rect(shape, x1, y1, x2, y2):
    mask = np.zeros(shape, bool)
    mask[y1:y2, x1:x2] = True
    return mask


def _disc(shape, cx, cy, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx + 0.5 - cx)**2 + (yy + 0.5 - cy)**2 <= r * r


def _scenes():
    """Images as (img_id, (H, W), [(label, visible mask), ...]).

    Image 1 is 40 x 56, not square, so a mask or box with x and y swapped
    cannot score. It holds a row of three touching squares A, B, C (each
    10 x 10, sharing edges), two same-class discs where E is painted over
    D (D keeps only its visible part, so the masks touch along a curve and
    the boxes overlap) and an isolated bar. Image 2 holds two bars touching
    along a long edge and a disc. Objects of different classes are apart
    (disjoint boxes and masks), which the label-shift tests rely on.
    """
    s1 = (40, 56)
    disc_d = _disc(s1, 12., 28., 7.)
    disc_e = _disc(s1, 21., 28., 7.)
    image1 = [
        (0, _rect(s1, 4, 4, 14, 14)),  # A
        (0, _rect(s1, 14, 4, 24, 14)),  # B
        (0, _rect(s1, 24, 4, 34, 14)),  # C
        (1, disc_d & ~disc_e),  # D, occluded by E
        (1, disc_e),  # E
        (2, _rect(s1, 42, 4, 50, 36)),  # F
    ]
    s2 = (32, 32)
    image2 = [
        (2, _rect(s2, 4, 4, 28, 10)),  # G
        (2, _rect(s2, 4, 10, 28, 16)),  # H
        (1, _disc(s2, 16., 24., 6.)),  # I
    ]
    return [(1, s1, image1), (2, s2, image2)]


def _tight_xywh(mask):
    """COCO box of a mask: pixel-edge convention, w = last col + 1 - x1."""
    ys, xs = np.nonzero(mask)
    x1, y1 = int(xs.min()), int(ys.min())
    return [x1, y1, int(xs.max()) + 1 - x1, int(ys.max()) + 1 - y1]


def _write_coco(path):
    images, annotations = [], []
    for img_id, (h, w), objects in _scenes():
        images.append(dict(id=img_id, file_name=f'{img_id}.png', height=h,
                           width=w))
        for label, mask in objects:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=CAT_IDS[label],
                    iscrowd=0,
                    area=int(mask.sum()),
                    bbox=[float(v) for v in _tight_xywh(mask)],
                    segmentation=dict(
                        size=list(rle['size']),
                        counts=rle['counts'].decode())))
    dump(
        dict(
            images=images,
            annotations=annotations,
            categories=[
                dict(id=i, name=n) for i, n in zip(CAT_IDS, CLASSES)
            ]), path)
    return path


@pytest.fixture
def ann_file(tmp_path):
    return _write_coco(str(tmp_path / 'hand_made.json'))


def _gt_predictions(mask_format='tensor'):
    """The ground truth as CocoMetric.process expects predictions.

    Every object gets its own score, all in [0.5, 0.9), so rankings are
    never decided by ties.
    """
    samples, k = [], 0
    for img_id, shape, objects in _scenes():
        masks = np.stack([m for _, m in objects])
        boxes = [_tight_xywh(m) for m in masks]
        pred = dict(
            bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes],
                                dtype=torch.float32),
            scores=torch.tensor(
                [0.9 - 0.02 * (k + i) for i in range(len(objects))]),
            labels=torch.tensor([label for label, _ in objects]),
        )
        if mask_format == 'tensor':
            pred['masks'] = torch.from_numpy(masks)
        else:
            pred['masks'] = [
                mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                for m in masks
            ]
        k += len(objects)
        samples.append(dict(img_id=img_id, ori_shape=shape,
                            pred_instances=pred))
    return samples


def _evaluate(ann_file, samples, metric=('bbox', 'segm'), classwise=False):
    coco_metric = CocoMetric(
        ann_file=ann_file, metric=list(metric), classwise=classwise)
    coco_metric.dataset_meta = dict(classes=CLASSES)
    coco_metric.process({}, samples)
    return coco_metric.evaluate(size=len(samples))


@pytest.mark.parametrize('mask_format', ['tensor', 'rle'])
def test_ground_truth_scores_exactly_one(ann_file, mask_format):
    results = _evaluate(ann_file, _gt_predictions(mask_format))
    for task in ('bbox', 'segm'):
        for item in ('mAP', 'mAP_50', 'mAP_75'):
            assert results[f'coco/{task}_{item}'] == 1.0, (task, item)


def test_all_labels_shifted_score_zero(ann_file):
    samples = _gt_predictions()
    for sample in samples:
        labels = sample['pred_instances']['labels']
        sample['pred_instances']['labels'] = (labels + 1) % len(CLASSES)
    results = _evaluate(ann_file, samples)
    # Each prediction now claims the class of objects it does not touch
    # (IoU 0), so every class has ground truth and no true positive.
    for task in ('bbox', 'segm'):
        assert results[f'coco/{task}_mAP'] == 0.0


@pytest.mark.parametrize('task', ['bbox', 'segm'])
def test_one_class_shifted_scores_zero_for_it(ann_file, task):
    samples = _gt_predictions()
    k = 0
    for sample in samples:
        pred = sample['pred_instances']
        moved = pred['labels'] == CLASSES.index('disc')
        pred['labels'] = torch.where(moved, CLASSES.index('bar'),
                                     pred['labels'])
        # Below every genuine bar, so the bars keep a perfect ranking.
        for i in moved.nonzero()[:, 0].tolist():
            k += 1
            pred['scores'][i] = 0.01 * k
    results = _evaluate(ann_file, samples, metric=[task], classwise=True)
    # disc: ground truth, no detection -> 0. bar: its three true positives
    # outrank the three false discs, so the envelope is 1 up to recall 1.
    assert results['coco/disc_precision'] == 0.0
    assert results['coco/bar_precision'] == 1.0
    assert results['coco/square_precision'] == 1.0
    assert results[f'coco/{task}_mAP'] == round(2 / 3, 3)


def test_merged_crowd_mask_costs_segm_only(ann_file):
    samples = _gt_predictions()
    pred = samples[0]['pred_instances']
    # What a model that cannot split a crowd outputs: square A's mask
    # swallows its touching neighbours B and C; its box stays right.
    pred['masks'][0] = pred['masks'][:3].any(0)
    pred['scores'][0] = 0.05  # the lowest square
    bbox = _evaluate(ann_file, samples, metric=['bbox'], classwise=True)
    segm = _evaluate(ann_file, samples, metric=['segm'], classwise=True)
    assert bbox['coco/bbox_mAP'] == 1.0
    # The merged mask has IoU 100/300 = 1/3 < 0.5 with each of A, B, C, so
    # it is a false positive at every threshold and A is never found. B and
    # C rank first: precision 1 up to recall 2/3, nothing beyond. 67 of the
    # 101 recall points (0, ..., 0.66) lie at or below 2/3.
    square_ap = 67 / 101
    assert segm['coco/square_precision'] == round(square_ap, 3)
    assert segm['coco/disc_precision'] == segm['coco/bar_precision'] == 1.0
    assert segm['coco/segm_mAP'] == round((square_ap + 2) / 3, 3)


def test_project_eval_path_on_generated_set(tmp_path):
    """GT of a generated synthetic split through the test dataloader and
    evaluator that every synthetic config inherits (what ``runner.test()``
    in ``make demo`` runs), with boxes derived from the masks the way
    PEPHead derives them.
    """
    data_root = str(tmp_path)
    # 128 px: the config's test Resize to (128, 128) is then the identity.
    ann = generate_coco_split(data_root, 'val', 3, image_size=128, seed=5)
    # The generator puts at least one cluster of touching same-class
    # objects in every image; the set must really contain crowds.
    assert dataset_statistics(ann)['crowded_fraction'] > 0

    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/synthetic_instance.py'))
    loader_cfg = cfg.test_dataloader
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    loader_cfg.dataset.data_root = data_root
    loader_cfg.dataset.ann_file = 'annotations/instances_val.json'
    loader_cfg.dataset.data_prefix = dict(img='val/')
    cfg.test_evaluator.ann_file = ann
    loader = Runner.build_dataloader(loader_cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo

    num_instances = 0
    for data_batch in loader:
        for sample in data_batch['data_samples']:
            gt = sample.gt_instances
            masks = gt.masks.to_tensor(torch.bool, 'cpu')
            assert masks.shape[1:] == sample.ori_shape
            pred = InstanceData()
            pred.masks = masks
            pred.bboxes = masks_to_boxes(masks)
            pred.labels = gt.labels
            pred.scores = torch.ones(len(gt))
            sample.pred_instances = pred
            num_instances += len(gt)
        evaluator.process(data_batch['data_samples'], data_batch)
    results = evaluator.evaluate(len(loader.dataset))

    # Nothing was dropped on the way from the file to the metric.
    assert num_instances == len(load(ann)['annotations'])
    for task in ('bbox', 'segm'):
        for item in ('mAP', 'mAP_50', 'mAP_75'):
            assert results[f'coco/{task}_{item}'] == 1.0, (task, item)
