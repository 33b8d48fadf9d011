"""CrowdCocoMetric: crowded/isolated AP and recall@0.5, duplicates per image.

Expected values are derived by hand below with how pycocotools computes AP
(see test_coco_metric_gt.py): per class and IoU threshold the detections
are ranked by score, the running precision tp / (tp + fp) is replaced by
its upper envelope (max over later ranks) and read at the 101 recall
points 0, 0.01, ..., 1 (the first rank whose recall reaches the point;
points never reached count 0); AP is the mean over the points, the ten
thresholds and the classes with ground truth in the subset. Every
CrowdCocoMetric prediction here is an exact copy of a ground truth mask
and box (IoU 1) or disjoint from every object of its class (IoU 0), so
all ten thresholds give the same value. Ignored detections are left out
of the ranking. Values are compared after CocoMetric's rounding to three
decimals.

Scene 1 and its helpers: tests/crowd_testing.py.
"""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import dump

from crowd_testing import (BACKGROUND, BAR, CAT_IDS, CLASSES, MISSED_B,
                           SCENE1, SQUARE, check_tasks, evaluate_metric,
                           rect_mask, rle_json, scene1_ann_ids, scene1_pred,
                           scene1_samples)
from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation import CocoOccludedSeparatedMetric
from mmdet.registry import METRICS
from mmdet_pep.datasets.synthetic import (dataset_statistics,
                                          generate_coco_split)
from mmdet_pep.evaluation import CrowdCocoMetric, crowded_instances
from pep_testing import ROOT


@pytest.mark.parametrize('crowd_dist, crowded', [
    (0, ''),
    (1, 'AB'),
    (2, 'ABDE'),
    (3, 'ABDE'),
])
def test_crowded_instances_scene1(scene1, crowd_dist, crowded):
    flags = crowded_instances(COCO(scene1), crowd_dist)
    assert {i for i, c in flags.items() if c} == scene1_ann_ids(crowded)
    assert set(flags) == scene1_ann_ids(SCENE1)


def _write_scene2(path):
    """Polygons, overlap and a diagonal neighbour; 32 x 48 px.

    G, H: square polygons x 4..14 and 10..20, y 4..14: they overlap by
    about four columns whatever pixels pycocotools' polygon rasteriser
    picks at the edges, so they are crowded at every distance, d=0
    included. J (x 30:34, y 20:24) and K (x 35:39, y 25:29), RLE squares:
    their nearest pixels (33, 23) and (35, 25) are 2 apart in x and in y,
    Chebyshev distance 2 (Euclidean 2.8): crowded from d=2 on. I: a bar
    polygon, the only bar, isolated.
    """
    shape = (32, 48)

    def poly(x1, x2, y1, y2):
        return [[x1, y1, x2, y1, x2, y2, x1, y2]]

    objects = [
        ('G', SQUARE, (4, 14, 4, 14), True),
        ('H', SQUARE, (10, 20, 4, 14), True),
        ('J', SQUARE, (30, 34, 20, 24), False),
        ('K', SQUARE, (35, 39, 25, 29), False),
        ('I', BAR, (4, 20, 20, 28), True),
    ]
    annotations = []
    for _, label, (x1, x2, y1, y2), is_poly in objects:
        annotations.append(
            dict(
                id=len(annotations) + 1,
                image_id=7,
                category_id=CAT_IDS[label],
                iscrowd=0,
                area=(x2 - x1) * (y2 - y1),
                bbox=[x1, y1, x2 - x1, y2 - y1],
                segmentation=poly(x1, x2, y1, y2) if is_poly else rle_json(
                    rect_mask(x1, x2, y1, y2, shape))))
    dump(
        dict(
            images=[
                dict(id=7, file_name='7.png', height=shape[0],
                     width=shape[1])
            ],
            annotations=annotations,
            categories=[
                dict(id=i, name=n) for i, n in zip(CAT_IDS, CLASSES)
            ]), path)
    return path, {name: k + 1 for k, (name, *_) in enumerate(objects)}


@pytest.mark.parametrize('crowd_dist, crowded', [
    (0, 'GH'),
    (1, 'GH'),
    (2, 'GHJK'),
])
def test_crowded_instances_polygons_overlap_diagonal(tmp_path, crowd_dist,
                                                    crowded):
    path, ids = _write_scene2(str(tmp_path / 'scene2.json'))
    flags = crowded_instances(COCO(path), crowd_dist)
    assert {i for i, c in flags.items() if c} == {ids[n] for n in crowded}
    assert set(flags) == set(ids.values())


def test_crowded_instances_skips_iscrowd_and_other_categories(scene1):
    coco = COCO(scene1)
    # B as an iscrowd region: A no longer has a neighbour, and B itself is
    # in neither subset.
    coco.anns[2]['iscrowd'] = 1
    flags = crowded_instances(coco, 2)
    assert {i for i, c in flags.items() if c} == scene1_ann_ids('DE')
    assert 2 not in flags
    # Only the bars: C alone.
    assert crowded_instances(coco, 2, cat_ids=[CAT_IDS[BAR]]) == {3: False}


def test_crowd_dist_1_agrees_with_dataset_statistics(tmp_path):
    """The synthetic set's statistics call an instance crowded when its
    mask dilated by one pixel (8-connectivity, i.e. a 3 x 3 square)
    meets another same-class mask: crowd_dist=1 by definition."""
    ann = generate_coco_split(str(tmp_path), 'val', 4, image_size=128,
                              seed=3)
    flags = crowded_instances(COCO(ann), 1)
    assert sum(flags.values()) / len(flags) == dataset_statistics(
        ann)['crowded_fraction']


@pytest.mark.parametrize('bad', [-1, 1.5])
def test_crowd_dist_must_be_a_natural_number(scene1, bad):
    with pytest.raises(ValueError, match='crowd_dist'):
        CrowdCocoMetric(ann_file=scene1, crowd_dist=bad)


def test_iou_thrs_must_include_half(scene1):
    with pytest.raises(ValueError, match='0.5'):
        CrowdCocoMetric(ann_file=scene1, iou_thrs=[0.75])


def test_ground_truth_scores_one_scene1(scene1):
    preds = [scene1_pred(n, 0.9 - 0.05 * k) for k, n in enumerate(SCENE1)]
    results = evaluate_metric(scene1, scene1_samples(preds))
    check_tasks(
        results,
        dict(crowded_mAP=1.0, crowded_recall50=1.0, isolated_mAP=1.0,
             isolated_recall50=1.0, duplicates_per_img=0.0, mAP=1.0))
    assert results['coco/num_crowded'] == 4
    assert results['coco/num_isolated'] == 2


def test_ground_truth_scores_one_polygons(tmp_path):
    """Masks decoded from the file's polygons, boxes from the file."""
    path, _ = _write_scene2(str(tmp_path / 'scene2.json'))
    coco = COCO(path)
    anns = coco.loadAnns(coco.getAnnIds())
    label_of = {c: i for i, c in enumerate(CAT_IDS)}
    pred = dict(
        bboxes=torch.tensor([[x, y, x + w, y + h]
                             for x, y, w, h in (a['bbox'] for a in anns)],
                            dtype=torch.float32),
        scores=torch.linspace(0.9, 0.5, len(anns)),
        labels=torch.tensor([label_of[a['category_id']] for a in anns]),
        masks=torch.from_numpy(
            np.stack([coco.annToMask(a).astype(bool) for a in anns])))
    results = evaluate_metric(
        path, [dict(img_id=7, ori_shape=(32, 48), pred_instances=pred)])
    # G, H, J, K crowded (squares), I isolated (the bar): each subset has
    # one class with ground truth, all found at IoU 1 before any false
    # positive (there is none).
    check_tasks(
        results,
        dict(crowded_mAP=1.0, crowded_recall50=1.0, isolated_mAP=1.0,
             isolated_recall50=1.0, duplicates_per_img=0.0, mAP=1.0))
    assert (results['coco/num_crowded'], results['coco/num_isolated']) == (4,
                                                                           1)




def test_missed_crowded_object(scene1):
    results = evaluate_metric(scene1, scene1_samples(MISSED_B))
    # crowded (d=2: A, B, D, E; all squares, so only the square class
    # counts): ranking F (ignored), A, D, E all true positives. Recall
    # 1/4, 2/4, 3/4 at precision 1; the 76 recall points 0..0.75 read 1,
    # the 25 above 0. AP = 76/101 = 0.752. (Were F a false positive:
    # precisions 0, 1/2, 2/3, 3/4, envelope 3/4 up to recall 3/4, AP =
    # 0.75 * 76/101 = 0.564.) recall@0.5: 3 of 4.
    # isolated (C, F): square F is first and found: AP 1, with A, D, E
    # ignored (matched to ignored crowded squares); bar C: AP 1. (Were A, D,
    # E false positives: square precision 1/4 at full recall, AP 0.25,
    # mAP 0.625.) recall@0.5: 2 of 2.
    # duplicates: none, over 2 images.
    check_tasks(
        results,
        dict(crowded_mAP=round(76 / 101, 3), crowded_recall50=0.75,
             isolated_mAP=1.0, isolated_recall50=1.0,
             duplicates_per_img=0.0))
    # CocoMetric's own keys stay: square 5 GT, F, A, D, E found at
    # precision 1, recall 4/5: 81 points (0..0.8); bar 1.
    assert results['coco/segm_mAP'] == round((81 / 101 + 1) / 2, 3)
    assert results['coco/bbox_mAP'] == round((81 / 101 + 1) / 2, 3)
    assert (results['coco/num_crowded'], results['coco/num_isolated']) == (4,
                                                                           2)


def test_missed_crowded_object_crowd_dist_1(scene1):
    results = evaluate_metric(scene1, scene1_samples(MISSED_B), crowd_dist=1)
    # d=1: crowded A, B; isolated C, D, E, F.
    # crowded: square ranking F, A, D, E: F, D, E ignored (isolated), A
    # true positive, B never found: recall 1/2 at precision 1, 51 of 101
    # points. recall@0.5: 1 of 2.
    # isolated: square F, D, E found (A ignored), bar C found: AP 1, recall
    # 4 of 4.
    check_tasks(
        results,
        dict(crowded_mAP=round(51 / 101, 3), crowded_recall50=0.5,
             isolated_mAP=1.0, isolated_recall50=1.0,
             duplicates_per_img=0.0))
    assert (results['coco/num_crowded'], results['coco/num_isolated']) == (2,
                                                                           4)


def test_missed_crowded_object_crowd_dist_0(scene1):
    results = evaluate_metric(scene1, scene1_samples(MISSED_B), crowd_dist=0)
    # d=0: nothing overlaps, all six isolated: the crowded subset is empty
    # (-1, COCO's value for no ground truth), and the isolated one is the
    # whole set: square 4 of 5 found at precision 1 (81 points), bar 1.
    # recall@0.5: 5 of 6.
    check_tasks(
        results,
        dict(crowded_mAP=-1.0, crowded_recall50=-1.0,
             isolated_mAP=round((81 / 101 + 1) / 2, 3),
             isolated_recall50=round(5 / 6, 3), duplicates_per_img=0.0))
    assert (results['coco/num_crowded'], results['coco/num_isolated']) == (0,
                                                                           6)


# Case 2: every object found, plus exact second copies (duplicates) of A
# (crowded), F (isolated) and C (isolated bar) and a square on the
# background. Square ranking: A, A2, F, F2, B, D, E, then the background.
DUPLICATES = [
    scene1_pred('A', 0.95),
    scene1_pred('A', 0.93),  # A2
    scene1_pred('F', 0.9),
    scene1_pred('F', 0.88),  # F2
    scene1_pred('B', 0.85),
    scene1_pred('D', 0.8),
    scene1_pred('E', 0.7),
    scene1_pred('C', 0.6),
    scene1_pred('C', 0.5),  # C2
    (*BACKGROUND, 0.4),
]


def test_duplicates(scene1):
    results = evaluate_metric(scene1, scene1_samples(DUPLICATES))
    # crowded (squares A, B, D, E): A TP; A2 finds A taken and hits no
    # other crowded square: FP; F matches isolated F: ignored; F2 finds F
    # taken but overlaps it: ignored too (a duplicate of an object outside
    # the subset); B, D, E TP; the background square FP after full
    # recall (no effect). Counted ranking TP FP TP TP TP: recall 1/4 1/4
    # 2/4 3/4 1, precision 1 1/2 2/3 3/4 4/5, envelope 1 .8 .8 .8 .8: the
    # 26 points 0..0.25 read 1, the 75 points 0.26..1 read 0.8. AP =
    # (26 + 60)/101 = 86/101 = 0.851. (Had F2 counted as a false positive:
    # precision 4/6 at full recall, envelope 2/3 beyond 0.25, AP = (26 +
    # 50)/101 = 0.752.) recall@0.5: 4 of 4.
    # isolated (F square, C bar): A and A2 ignored (A2 a duplicate of the
    # crowded A), F TP: square AP 1 (had A2 been a false positive ahead of
    # F: precision 1/2, AP 0.5, mAP 0.75); F2 and C2 FP after full
    # recall. Bar C TP first: AP 1. recall@0.5: 2 of 2.
    # duplicates: A2, F2, C2 in image 1 (the background square hits
    # nothing: not a duplicate), none in image 2: 3 / 2 images = 1.5.
    check_tasks(
        results,
        dict(crowded_mAP=round(86 / 101, 3), crowded_recall50=1.0,
             isolated_mAP=1.0, isolated_recall50=1.0,
             duplicates_per_img=1.5))


def test_duplicates_count_only_top_100_per_image(scene1):
    # C (bar), A, then 101 exact copies of F. The image's top 100 (over
    # both classes) are C, A and the first 98 copies: the first copy finds
    # F, the other 97 are duplicates: 97 / 2 images = 48.5. (pycocotools'
    # per-class top 100 alone would keep 99 copies, 98 duplicates, 49.0;
    # no cut 100 duplicates, 50.0.)
    preds = [scene1_pred('C', 0.99), scene1_pred('A', 0.98)] + [
        scene1_pred('F', 0.9 - 0.001 * k) for k in range(101)
    ]
    results = evaluate_metric(scene1, scene1_samples(preds), metric=['segm'])
    assert results['coco/segm_duplicates_per_img'] == 48.5
    assert 'coco/bbox_duplicates_per_img' not in results


def test_subset_flags_do_not_leak_into_the_ground_truth(scene1):
    crowd_metric = CrowdCocoMetric(ann_file=scene1, metric=['bbox', 'segm'])
    crowd_metric.dataset_meta = dict(classes=CLASSES)
    crowd_metric.process({}, scene1_samples(MISSED_B))
    first = crowd_metric.evaluate(size=2)
    # pycocotools leaves ignore = iscrowd (0) in the file's dicts, no
    # subset flag; a second evaluation (the next validation) is the same.
    assert not any(
        a.get('ignore') for a in crowd_metric._coco_api.anns.values())
    crowd_metric.process({}, scene1_samples(MISSED_B))
    assert crowd_metric.evaluate(size=2) == first


def test_builds_through_custom_imports(scene1):
    cfg = Config(
        dict(
            custom_imports=dict(imports=['mmdet_pep'],
                                allow_failed_imports=False),
            val_evaluator=dict(
                type='CrowdCocoMetric', ann_file=scene1,
                metric=['bbox', 'segm'])))
    metric = METRICS.build(cfg.val_evaluator)
    assert isinstance(metric, CrowdCocoMetric)
    assert metric.crowd_dist == 2


# --- mmdet's CocoOccludedSeparatedMetric through the project's config ---


def test_occluded_separated_config(scene1, tmp_path):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/coco_occluded_separated.py'))
    ev = cfg.test_evaluator
    assert ev.type == 'CocoOccludedSeparatedMetric'
    assert ev.occluded_ann == 'data/coco/annotations/occluded_coco.pkl'
    assert ev.separated_ann == 'data/coco/annotations/separated_coco.pkl'
    assert list(ev.metric) == ['bbox', 'segm']
    assert not any('://' in str(v) for v in ev.values())
    # The rest is mmdet's COCO instance set.
    assert cfg.test_dataloader.dataset.type == 'CocoDataset'
    assert cfg.val_evaluator.type == 'CocoMetric'

    # Stand-ins in the format the metric reads (compute_recall): one entry
    # per object, [file name, class name, (unused), box, RLE mask]; the
    # occluded file's box is x, y, w, h, the separated one's x1, y1, x2, y2.
    def entry(name):
        label, (x1, x2, y1, y2) = SCENE1[name]
        rle = rle_json(rect_mask(x1, x2, y1, y2))
        return ['1.png', CLASSES[label], None, [x1, y1, x2 - x1, y2 - y1],
                rle]

    occluded = str(tmp_path / 'occluded_coco.pkl')
    separated = str(tmp_path / 'separated_coco.pkl')
    with open(occluded, 'wb') as f:
        pickle.dump([entry('A'), entry('D')], f)
    with open(separated, 'wb') as f:
        pickle.dump([entry('C')], f)
    ev.ann_file = scene1
    ev.occluded_ann = occluded
    ev.separated_ann = separated
    metric = METRICS.build(ev)
    assert isinstance(metric, CocoOccludedSeparatedMetric)
    assert (metric.score_thr, metric.iou_thr) == (0.3, 0.75)
    metric.dataset_meta = dict(classes=CLASSES)

    # A found exactly. D: a prediction covering 5 of its 8 columns, mask
    # IoU 40/64 = 0.625 < 0.75: missed. C: exact, but at score 0.2, below
    # score_thr 0.3, and as a square at 0.9 (wrong class): missed.
    preds = [
        scene1_pred('A', 0.95),
        (SQUARE, (2, 7, 14, 22), 0.8),
        (SQUARE, SCENE1['C'][1], 0.9),
        scene1_pred('C', 0.2),
    ]
    samples = scene1_samples(preds)[:1]
    metric.process({}, samples)
    results = metric.evaluate(size=1)
    # Occluded: A of {A, D} -> 50 %; separated: none of {C} -> 0 %.
    assert results['coco/occluded_recall'] == 50.0
    assert results['coco/separated_recall'] == 0.0
