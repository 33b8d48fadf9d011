"""A tiny `make demo`: generate data, train, evaluate, draw, plot."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_runs_end_to_end_and_writes_its_outputs(tmp_path):
    work_dir = tmp_path / 'demo'
    data_root = tmp_path / 'data'
    cmd = [
        sys.executable, 'tools/demo.py', '--config',
        'configs/pep/pep_r18_fpn_tiny_synthetic.py', '--work-dir',
        str(work_dir), '--data-root', f'{data_root}/', '--num-train', '6',
        '--num-val', '3', '--image-size', '64', '--max-iters', '2',
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
