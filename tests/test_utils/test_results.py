"""mmdet_pep.utils.results: result files of training runs and the mean ±
std tables built from them, on hand-made results."""
import json
import math

import pytest

from mmdet_pep.utils.results import (TABLE_METRICS, is_current,
                                     load_results, mean_std, read_result,
                                     result_path, results_markdown,
                                     summarize, write_result)

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


def test_markdown_rows_and_every_run():
    results = [
        result('A', 'demo', 0, 0.30),
        result('A', 'demo', 1, 0.32),
        result('A', 'dense', 0, 0.20),
    ]
    stale = [dict(result('A', 'demo', 2, 0.5), code_commit='0123456789ab')]
    text = results_markdown(results, stale, ['A'], ['demo', 'dense'], 'T')
    rows = [line for line in text.splitlines() if line.startswith('| A')]
    # demo (2 runs), dense (1), all (3), then the three runs.
    assert rows[0].startswith('| A | demo | 2 | 31.0 ± 1.4 | 32.0 ± 1.4 |')
    assert rows[1].startswith('| A | dense | 1 | 20.0 | 21.0 |')
    assert rows[2].startswith('| A | all | 3 | 25.5 | 26.5 |')
    assert rows[3].startswith('| A | demo | 0 | 1200 | commit-a |')
    assert len(rows) == 6
    assert len(rows[0].split('|')) == len(TABLE_METRICS) + 5
    assert 'demo/A/seed2 (012345678)' in text
    # One data set: no 'all' row repeating it.
    text = results_markdown(results[:2], [], ['A'], ['demo'], 'T')
    assert '| A | all |' not in text and '| A | demo | 2 |' in text


def test_undefined_metrics_and_other_columns():
    # -1 is COCO's "no GT in this subset": left out of the means and shown
    # as '-' in the runs, not as -100.
    runs = [
        result('A', 'clips', 0, 0.2, crowded=-1.),
        result('A', 'clips', 1, 0.4, crowded=-1.)
    ]
    text = results_markdown(runs, [], ['A'], ['clips'], 'T')
    rows = [line for line in text.splitlines() if line.startswith('| A')]
    crowded = [title for _, title, _ in TABLE_METRICS].index('crowded AP')
    # The mean row has 3 leading columns, the runs 5.
    assert [row.split(' | ')[first + crowded]
            for row, first in zip(rows, (3, 5, 5))] == ['-'] * 3
    assert '-100' not in text
    # Other columns, note and tool (the video table's).
    columns = (('coco/segm_mAP', 'AP', 100.), ('coco/bbox_mAP', 'B', 1.))
    text = results_markdown(runs, [], ['A'], ['clips'], 'V',
                            metrics=columns, note='N.', tool='x.py')
    assert '| Model | Data | runs | AP | B |' in text
    assert '| A | clips | 2 | 30.0 ± 14.1 | 0.31 ± 0.14 |' in text
    assert '`tools/analysis_tools/x.py`' in text and 'std. N.' in text


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
