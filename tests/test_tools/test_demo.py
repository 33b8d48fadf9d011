"""A tiny `make demo`: generate data, train, evaluate, draw, plot."""
import json
import os
import os.path as osp
import subprocess
import sys
from pep_testing import ROOT, load_tool


def test_build_cfg_rewrites_data_schedule_and_seed():
    """The command line reaches the config through the shared rewrites of
    mmdet_pep_tools.config_rewrites (tested themselves in
    tests/test_mmdet_pep_tools/test_config_rewrites.py).
    """
    demo = load_tool('demo')
    args = demo.parse_args([
        '--data-root', 'd/', '--train-ann', 'tr.json', '--val-ann', 'va.json',
        '--train-img', 'ti/', '--val-img', 'vi/', '--test-ann', 'te.json',
        '--test-img', 'tei/', '--max-iters', '600',
        '--train-seed', '5', '--classes', 'a', 'b', '--batch-size', '4'
    ])
    cfg = demo.build_cfg(args)
    assert cfg.work_dir == 'work_dirs/demo'
    for split, ann, img in (('train', 'tr.json', 'ti/'),
                            ('val', 'va.json', 'vi/'),
                            ('test', 'te.json', 'tei/')):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert (dataset.data_root, dataset.ann_file,
                dataset.data_prefix.img) == ('d/', ann, img)
        assert dataset.metainfo.classes == ('a', 'b')
    assert cfg.val_evaluator.ann_file == 'd/va.json'
    assert cfg.test_evaluator.ann_file == 'd/te.json'
    assert cfg.model.mask_head.num_classes == 2
    assert cfg.train_dataloader.batch_size == 4
    # Half the 1200 iterations: the LR schedule keeps its shape.
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 600
    warmup, steps = cfg.param_scheduler
    assert (warmup.end, steps.end, steps.milestones) == (50, 600, [480])
    assert cfg.default_hooks.checkpoint.interval == 600
    assert cfg.randomness.seed == 5
    # By default the seed is 0, that of the seed-0 result files.
    assert demo.build_cfg(demo.parse_args([])).randomness.seed == 0


def test_demo_runs_end_to_end_and_writes_its_outputs(tmp_path):
    work_dir = tmp_path / 'demo'
    data_root = tmp_path / 'data'
    cmd = [
        sys.executable, 'tools/demo.py', '--config',
        'configs/pep/pep_r18_fpn_tiny_synthetic.py', '--work-dir',
        str(work_dir), '--data-root', f'{data_root}/', '--num-train', '6',
        '--num-val', '3', '--num-test', '2', '--image-size', '64',
        '--max-iters', '2',
        '--batch-size', '2', '--num-vis', '2'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout

    # The data set was generated because it was missing.
    assert osp.isfile(data_root / 'annotations' / 'instances_train.json')
    assert 'generating the crowded-objects set' in log
    # Training ran for the requested iterations and was checkpointed.
    assert osp.isfile(work_dir / 'iter_2.pth')
    metrics = json.loads((work_dir / 'metrics.json').read_text())
    for task in ('bbox', 'segm'):
        assert f'coco/{task}_mAP' in metrics
    assert '| segm |' in log and '| bbox |' in log
    # Pictures and the loss curve, listed at the end.
    sheet = work_dir / 'predictions.png'
    curve = work_dir / 'loss_curve.png'
    for png in (sheet, curve):
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert str(png) in log
    assert len(list((work_dir / 'vis').glob('*.png'))) == 2


def test_demo_refuses_missing_data_when_told_not_to_generate(tmp_path):
    cmd = [
        sys.executable, 'tools/demo.py', '--data-root', f'{tmp_path}/',
        '--no-generate', '--work-dir', str(tmp_path / 'w')
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert 'instances_train.json' in out.stderr
