"""mmdet_pep_tools.results_table: a results folder's README.md (current
runs, stale ones only counted) and the archives of old runs."""
from mmdet_pep_tools.results import TABLE_METRICS
from mmdet_pep_tools.results_table import archive_markdown, results_markdown

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
    # Stale runs are counted, never listed.
    assert '1 stale run(s)' in text and '012345678' not in text
    assert 'seed2' not in text
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
    # Counts and milliseconds of 10 or more: one decimal; a run's own field
    # (train_step_ms) as a column; a run without it shows '-'.
    runs[0]['train_step_ms'], runs[1]['train_step_ms'] = 700., None
    runs[0]['metrics']['ids'] = runs[1]['metrics']['ids'] = 428
    columns = (('ids', 'IDs', 1.), ('train_step_ms', 'ms', 1.))
    text = results_markdown(runs, [], ['A'], ['clips'], 'V', metrics=columns)
    assert '| A | clips | 2 | 428.0 ± 0.0 | 700.0 |' in text
    assert text.splitlines()[-1].endswith('| 428.0 | - |')


def test_archive_groups_runs_by_model_and_code():
    runs = [
        dict(result('A', 'demo', 0, 0.30), date='2026-01-02'),
        dict(result('A', 'demo', 1, 0.32), date='2026-01-02'),
        dict(result('A', 'demo', 0, 0.10), code_commit='old-commit',
             date='2026-01-01'),
        dict(result('A', 'dense', 0, 0.20), date='2026-01-02'),
    ]
    text = archive_markdown(runs, 'Old', 'On the val split.',
                            ['demo', 'dense'])
    assert text.startswith('# Old\n\nOn the val split.\n')
    assert '| Model | code | Data | runs | mask AP |' in text
    rows = [line for line in text.splitlines() if line.startswith('| A |')]
    # The older commit first; every run counts; then every run.
    assert rows[0].startswith('| A | old-commi | demo | 1 | 10.0 |')
    assert rows[1].startswith('| A | commit-a | demo | 2 | 31.0 ± 1.4 |')
    assert rows[2].startswith('| A | commit-a | dense | 1 | 20.0 |')
    assert rows[3].startswith('| A | commit-a | all | 3 | 25.5 |')
    assert len(rows) == 4 + 4
    assert 'stale' not in text
