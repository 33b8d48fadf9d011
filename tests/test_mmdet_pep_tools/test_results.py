"""mmdet_pep_tools.results: the result store (one file per training run,
latency files) and the mean ± std over seeds, on hand-made results."""
import json
import math

import pytest

from mmdet_pep_tools.results import (VIS_TABLE_METRICS, is_current,
                                     latency_path, load_latencies,
                                     load_results, mean_std, metric_value,
                                     read_result, result_path, summarize,
                                     write_latency, write_result)

FP = ('digest-a', 'commit-a')


def result(name, variant, seed, segm, crowded=None, **extra):
    metrics = {'coco/segm_mAP': segm, 'coco/bbox_mAP': segm + 0.01}
    if crowded is not None:
        metrics['coco/segm_crowded_mAP'] = crowded
    return dict(
        name=name,
        config=f'configs/{name}.py',
        config_digest=FP[0],
        code_commit=FP[1],
        variant=variant,
        seed=seed,
        max_iters=1200,
        metrics=metrics,
        **extra)


def test_mean_std_is_the_sample_std():
    assert mean_std([2.]) == (2., None)
    mean, std = mean_std([0.2, 0.4, 0.9])
    assert mean == pytest.approx(0.5)
    # deviations -0.3, -0.1, 0.4: squares 0.26, / (3 - 1)
    assert std == pytest.approx(math.sqrt(0.13))


def test_summarize_by_hand():
    results = [
        result('A', 'demo', 0, 0.30, crowded=0.2),
        result('A', 'demo', 1, 0.32, crowded=-1.),  # empty subset: left out
        result('A', 'dense', 0, 0.20, crowded=0.1),
        result('A', 'dense', 1, 0.24, crowded=0.3),
        result('B', 'demo', 0, 0.10),
    ]
    summary = summarize(results, ['A', 'B'], ['demo', 'dense'])
    a = summary['A']
    mean, std, n = a['demo']['coco/segm_mAP']
    assert (mean, n) == (pytest.approx(0.31), 2)
    assert std == pytest.approx(math.sqrt(2 * 0.01**2))
    assert a['demo']['coco/segm_crowded_mAP'] == (0.2, None, 1)
    assert a['dense']['coco/segm_mAP'][0] == pytest.approx(0.22)
    # 'all': mean of the variant means, pooled std, all runs counted.
    mean, std, n = a['all']['coco/segm_mAP']
    assert mean == pytest.approx((0.31 + 0.22) / 2)
    assert std == pytest.approx(
        math.sqrt((2 * 0.01**2 + 2 * 0.02**2) / 2))
    assert n == 4
    # One run on demo only: no 'all' (dense missing), no std.
    assert summary['B']['demo']['coco/segm_mAP'] == (0.1, None, 1)
    assert summary['B']['dense'] == {} and summary['B']['all'] == {}
    # A pooled std needs a std in every variant.
    assert a['all']['coco/segm_crowded_mAP'][1] is None


def test_a_column_may_be_a_run_field():
    """The video table's train ms/step is a field of the run, not of its
    evaluator; a run without it (0 iterations: None) has no value."""
    trained = result('V', 'clips', 0, 0.1, train_step_ms=700.)
    trained['metrics']['test_ms_per_frame'] = 40.
    untrained = result('V-image-weights', 'clips', 0, 0.05,
                       train_step_ms=None)
    assert metric_value(trained, 'train_step_ms') == 700.
    assert metric_value(trained, 'test_ms_per_frame') == 40.
    assert metric_value(untrained, 'train_step_ms') is None
    assert metric_value(trained, 'seed') == 0.  # any numeric field
    assert metric_value(trained, 'name') is None
    assert 'train_step_ms' in [key for key, _, _ in VIS_TABLE_METRICS]
    summary = summarize([
        trained, dict(trained, seed=1, train_step_ms=800.), untrained
    ], ['V', 'V-image-weights'], ['clips'], VIS_TABLE_METRICS)
    mean, std, n = summary['V']['clips']['train_step_ms']
    assert (mean, n) == (750., 2) and std == pytest.approx(math.sqrt(5000))
    assert 'train_step_ms' not in summary['V-image-weights']['clips']


def test_files_round_trip(tmp_path):
    r1 = result('A', 'demo', 1, 0.3)
    r0 = result('A', 'demo', 0, 0.2)
    r_dense = result('B', 'dense', 0, 0.1)
    for r in (r1, r0, r_dense):
        write_result(
            result_path(str(tmp_path), r['variant'], r['name'], r['seed']),
            r)
    assert (tmp_path / 'demo' / 'A' / 'seed1.json').is_file()
    (tmp_path / 'README.md').write_text('table')  # not a result
    assert load_results(str(tmp_path)) == [r0, r1, r_dense]
    assert load_results(str(tmp_path / 'none')) == []


def test_bad_result_files_are_named(tmp_path):
    with pytest.raises(ValueError, match='lacks'):
        write_result(str(tmp_path / 'x.json'), dict(name='A'))
    path = tmp_path / 'demo' / 'A' / 'seed0.json'
    path.parent.mkdir(parents=True)
    path.write_text('{not json')
    with pytest.raises(ValueError, match='seed0.json: not a result'):
        load_results(str(tmp_path))
    path.write_text(json.dumps(dict(name='A', seed=0)))
    with pytest.raises(ValueError, match=r"seed0.json: .*lacks \['config'"):
        read_result(str(path))


def test_is_current():
    r = result('A', 'demo', 0, 0.3)
    assert is_current(r, FP)
    assert not is_current(r, ('digest-b', FP[1]))
    assert not is_current(r, (FP[0], 'commit-b'))
    dirty = dict(r, code_commit='commit-a+dirty')
    assert not is_current(dirty, (FP[0], 'commit-a+dirty'))


def test_latency_files_round_trip(tmp_path):
    latency = dict(name='A', config='configs/a.py', code_commit='c',
                   model_digest='m', device='cpu', device_name='x86_64',
                   threads=2, latency=dict(median_ms=12.5))
    write_latency(latency_path(str(tmp_path / 'lat'), 'A'), latency)
    (tmp_path / 'lat' / 'notes.txt').write_text('not a latency')
    assert load_latencies(str(tmp_path / 'lat')) == {'A': latency}
    assert load_latencies(str(tmp_path / 'none')) == {}
    with pytest.raises(ValueError, match='lacks'):
        write_latency(str(tmp_path / 'b.json'), dict(name='B'))
    (tmp_path / 'lat' / 'B.json').write_text(json.dumps(dict(name='B')))
    with pytest.raises(ValueError, match=r'B.json: latency file lacks'):
        load_latencies(str(tmp_path / 'lat'))
