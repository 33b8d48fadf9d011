"""mmdet_pep_tools.vis_protocol: the video runs' README table and page, on
hand-made judged results."""
from mmdet_pep_tools.results import VIS_TABLE_METRICS
from mmdet_pep_tools.specs import ModelSpec
from mmdet_pep_tools.vis_protocol import (RESULTS_DIR, page, readme_block,
                                          vis_args)


def run(name, seed, ap, step_ms):
    return dict(name=name, config='c.py', config_digest='d',
                code_commit='c' * 40, variant='clips', seed=seed,
                max_iters=1200 if step_ms else 0, train_step_ms=step_ms,
                metrics={'youtube_vis/segm_mAP': ap,
                         'youtube_vis/id_switches': 10 * (seed + 1),
                         'test_ms_per_frame': 40.})


def judged(current, stale=()):
    return dict(specs=[ModelSpec('V', 'c.py'), ModelSpec('M', 'm.py'),
                       ModelSpec('V-image-weights', 'c.py')],
                variants=['clips'], current=list(current),
                stale=list(stale), hint=None)


def test_readme_block_is_the_mean_over_seeds():
    text = readme_block(judged([
        run('V', 0, 0.10, 700.), run('V', 1, 0.14, 800.),
        run('V-image-weights', 0, 0.03, None)
    ]))
    lines = text.splitlines()
    assert lines[0] == '| Model | runs | ' + ' | '.join(
        t for _, t, _ in VIS_TABLE_METRICS) + ' |'
    # No row for M (no runs); V: mean ± std of 2 seeds; the untrained run
    # has no training step.
    assert lines[2].startswith('| V | 2 | 12.0 ± 2.8 |')
    assert '| 15.0 ± 7.1 |' in lines[2] and lines[2].endswith(
        '| 750.0 ± 70.7 |')
    assert lines[3].startswith('| V-image-weights | 1 | 3.0 |')
    assert lines[3].endswith('| - |')
    assert len(lines) == 4


def test_no_runs_and_the_page():
    text = readme_block(judged([], stale=[run('V', 0, 0.1, 700.)]))
    assert text.startswith('No current video runs yet')
    assert f'{RESULTS_DIR}/README.md' in text
    text = page(judged([run('V', 0, 0.10, 700.)],
                       stale=[run('V', 1, 0.1, 700.)]))
    assert text.startswith('# Video instance segmentation over seeds')
    assert '| V | clips | 1 | 10.0 |' in text
    assert '1 stale run(s)' in text
    assert vis_args('/r').results_dir == f'/r/{RESULTS_DIR}'
