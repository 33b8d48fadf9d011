"""Fault: training killed mid-run and restarted with ``--resume``.

A tiny PEP trains on 8 synthetic 64 px images (batch 2, 6 iterations,
checkpoint every 2). The "kill" is an exception raised right after the
optimizer step of iteration 5, before that iteration is logged or saved,
the same state a SIGKILL at that moment leaves: ``iter_4.pth`` is the
last checkpoint and iteration 5's update is lost. A new Runner with
``resume=True`` (what ``tools/train.py --resume`` sets) must continue from
iteration 4 with the optimizer and scheduler state of the checkpoint, and
with ``randomness=dict(seed=0, deterministic=True)`` its per-iteration
losses in ``scalars.json`` must equal those of an uninterrupted run.
"""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet_pep import register_checkpoint_safe_globals
from mmdet_pep.datasets import generate_coco_split
from mmdet_pep.engine import RNGStateHook
from pep_testing import tiny_detector_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAX_ITERS = 6
KILL_AT = 5  # iteration (1-based) that is lost
LOSS_KEYS = ('loss', 'loss_perceive', 'loss_mask', 'loss_excavate',
             'loss_excavate_cls', 'loss_graph', 'lr', 'grad_norm')




class _Killed(Exception):
    pass


class KillHook(Hook):
    """Dies after the optimizer step of iteration ``at``, before logging or
    checkpointing it."""
    priority = 'HIGHEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            raise _Killed(f'killed in iteration {self.at}')


class RecordStartHook(Hook):
    """Records the state the loop starts from, after (re)loading."""
    priority = 'LOWEST'

    def before_train(self, runner):
        opt = runner.optim_wrapper.optimizer
        self.iter = runner.iter
        self.steps = [s['step'].item() for s in opt.state.values()]
        self.lr = [g['lr'] for g in opt.param_groups]
        self.last_steps = [s.last_step for s in runner.param_schedulers]


@pytest.fixture(autouse=True)
def _opt_in():
    """As tools/train.py: checkpoints save and load under weights_only."""
    register_checkpoint_safe_globals()


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_coco_split(root, 'train', 8, image_size=64, seed=0)
    return root


def make_runner(work_dir, data_root, name, resume=False, hooks=()):
    data = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/synthetic_instance.py'))
    sched = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/schedules/schedule_synthetic.py'))
    loader = data.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.dataset.data_root = data_root + '/'
    for t in loader.dataset.pipeline:
        if t.type == 'Resize':
            t.scale = (64, 64)
    return Runner(
        model=tiny_detector_cfg(),
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=loader.to_dict(),
        train_cfg=dict(
            type='IterBasedTrainLoop', max_iters=MAX_ITERS, val_interval=100),
        optim_wrapper=sched.optim_wrapper.to_dict(),
        # Warm-up then a step, so that a scheduler restarted from scratch
        # would give other learning rates after the resume.
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=3),
            dict(type='MultiStepLR', milestones=[4], gamma=0.1,
                 by_epoch=False)
        ],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook', interval=2, by_epoch=False)),
        # What the PEP configs add: the RNG state travels with checkpoints.
        custom_hooks=[RNGStateHook(), *hooks],
        log_processor=dict(by_epoch=False, window_size=1),
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type='LocalVisBackend')],
            name=name),
        randomness=dict(seed=0, deterministic=True),
        resume=resume,
        default_scope='mmdet')


def logged_losses(work_dir):
    """{iteration: {loss key: value}} from every scalars.json of a run."""
    losses = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    assert rec['step'] not in losses, 'iteration logged twice'
                    losses[rec['step']] = {k: rec[k] for k in LOSS_KEYS}
    return losses


def test_killed_run_resumes_with_the_same_loss_curve(tmp_path, data_root):
    full_dir, cut_dir = str(tmp_path / 'full'), str(tmp_path / 'cut')
    full = make_runner(full_dir, data_root, 'full')
    full.train()
    ref = logged_losses(full_dir)
    assert sorted(ref) == list(range(1, MAX_ITERS + 1))

    cut = make_runner(cut_dir, data_root, 'cut', hooks=[KillHook(KILL_AT)])
    with pytest.raises(_Killed):
        cut.train()
    assert sorted(logged_losses(cut_dir)) == list(range(1, KILL_AT))
    with open(osp.join(cut_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_4.pth')

    start = RecordStartHook()
    resumed = make_runner(
        cut_dir, data_root, 'resumed', resume=True, hooks=[start])
    resumed.train()

    # Continues from the checkpoint: iteration, optimizer and scheduler.
    ckpt = torch.load(osp.join(cut_dir, 'iter_4.pth'), weights_only=True)
    assert start.iter == 4 == ckpt['meta']['iter']
    assert start.steps and set(start.steps) == {4.0}
    assert start.lr == [
        g['lr'] for g in ckpt['optimizer']['param_groups']
    ]
    # LinearLR stops counting at its end (3 steps), MultiStepLR does not.
    assert start.last_steps == [
        s['last_step'] for s in ckpt['param_schedulers']
    ] == [2, 4]
    assert resumed.iter == MAX_ITERS

    # Same loss curve as the uninterrupted run, iteration by iteration.
    got = logged_losses(cut_dir)
    assert sorted(got) == sorted(ref)
    for it in ref:
        for key in LOSS_KEYS:
            assert got[it][key] == pytest.approx(
                ref[it][key], rel=1e-6, abs=1e-8), (it, key)
    # And the same weights at the end.
    for (name, a), b in zip(full.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8, msg=name)
