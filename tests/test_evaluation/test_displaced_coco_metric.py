"""DisplacedCocoMetric: scene 1 of tests/crowd_testing.py with B and D
marked displaced; CrowdCocoMetric's scores plus AP and recall@0.5 of the
displaced and of the placed instances (issue #39, item 1), and its
answers to a bad displaced file.

The AP values are derived as in test_crowd_coco_metric.py."""
import pytest
from mmengine.fileio import dump

from crowd_testing import (MISSED_B, SCENE1, check_tasks, evaluate_metric,
                           scene1_ann_ids, scene1_samples)
from mmdet_pep.evaluation.metrics.displaced_coco_metric import load_displaced


def _displaced_file(tmp_path, names, drop=()):
    """count_displaced.py --out's shape: annotation id (str) -> flag."""
    path = str(tmp_path / 'displaced.json')
    flags = {
        str(i): i in scene1_ann_ids(names)
        for i in range(1, len(SCENE1) + 1) if i not in scene1_ann_ids(drop)
    }
    dump(dict(summary={}, displaced=flags), path)
    return path


def _evaluate(scene1, displaced_file, preds=MISSED_B):
    return evaluate_metric(scene1, scene1_samples(preds),
                           type='DisplacedCocoMetric',
                           displaced_file=displaced_file)


def test_load_displaced_maps_annotation_ids_to_flags(tmp_path):
    flags = load_displaced(_displaced_file(tmp_path, 'BD'))
    assert flags == {1: False, 2: True, 3: False, 4: True, 5: False,
                     6: False}


def test_displaced_subsets_scored_apart(scene1, tmp_path):
    results = _evaluate(scene1, _displaced_file(tmp_path, 'BD'))
    # displaced {B, D}, both squares: ranking F, A (placed: ignored), D
    # true positive, E (ignored); B never found: recall 1/2 at precision
    # 1, 51 of 101 points; recall@0.5 1 of 2.
    # placed {A, C, E, F}: squares F, A, E found (D ignored) at precision
    # 1, bar C found: AP 1, recall 4 of 4.
    check_tasks(
        results,
        dict(displaced_mAP=round(51 / 101, 3), displaced_recall50=0.5,
             placed_mAP=1.0, placed_recall50=1.0))
    assert (results['coco/num_displaced'], results['coco/num_placed']) == (2,
                                                                          4)
    # CrowdCocoMetric's keys are unchanged.
    assert results == dict(
        results, **evaluate_metric(scene1, scene1_samples(MISSED_B)))


def test_every_object_found_scores_one_on_both_subsets(scene1, tmp_path):
    preds = [(*SCENE1[n], 0.9 - 0.05 * k) for k, n in enumerate(SCENE1)]
    results = _evaluate(scene1, _displaced_file(tmp_path, 'BD'), preds)
    check_tasks(
        results,
        dict(displaced_mAP=1.0, displaced_recall50=1.0, placed_mAP=1.0,
             placed_recall50=1.0))


def test_displaced_subset_empty(scene1, tmp_path):
    results = _evaluate(scene1, _displaced_file(tmp_path, ''))
    check_tasks(
        results,
        dict(displaced_mAP=-1.0, displaced_recall50=-1.0,
             placed_recall50=round(5 / 6, 3)))
    assert results['coco/num_displaced'] == 0


def test_displaced_file_errors(scene1, tmp_path):
    with pytest.raises(FileNotFoundError, match='count_displaced'):
        _evaluate(scene1, str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"displaced": {"1": "yes"}}')
    with pytest.raises(ValueError,
                       match='bad.json: the flag of annotation 1 is'):
        _evaluate(scene1, str(bad))
    bad.write_text('[1, 2]')
    with pytest.raises(ValueError, match='no "displaced" object'):
        _evaluate(scene1, str(bad))
    bad.write_text('{"displaced": {"B": true}}')
    with pytest.raises(ValueError, match="key 'B' is not an annotation id"):
        _evaluate(scene1, str(bad))
    bad.write_text('{"displaced": ')
    with pytest.raises(ValueError, match='bad.json: not a JSON file'):
        _evaluate(scene1, str(bad))
    # Written for another annotation file: an evaluated id has no flag.
    partial = _displaced_file(tmp_path, 'B', drop='F')
    with pytest.raises(ValueError, match='no flag for 1 of the 6'):
        _evaluate(scene1, partial)
