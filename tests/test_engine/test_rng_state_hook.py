"""RNGStateHook: torch's RNG state travels with checkpoints and comes back
on resume only. The end-to-end effect (a resumed run's losses equal an
uninterrupted run's) is tested in tests/test_robustness/test_resume.py."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger

from mmdet.registry import HOOKS
from mmdet_pep.engine import RNGStateHook
from mmdet_pep.engine.hooks import rng_state_hook


def fake_runner(iteration):
    return SimpleNamespace(
        iter=iteration, logger=MMLogger.get_current_instance())


def saved_checkpoint(tmp_path, hook, iteration):
    """Save like the Runner does; return (loaded checkpoint, next draw)."""
    torch.manual_seed(123)
    torch.rand(5)
    ckpt = dict(meta=dict(iter=iteration), state_dict={})
    hook.before_save_checkpoint(fake_runner(iteration), ckpt)
    expected = torch.rand(3)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    return torch.load(path, weights_only=True), expected


def test_registered():
    assert isinstance(HOOKS.build(dict(type='RNGStateHook')), RNGStateHook)


def test_resume_restores_the_state(tmp_path):
    hook = RNGStateHook()
    ckpt, expected = saved_checkpoint(tmp_path, hook, 4)
    assert isinstance(ckpt['rng_state']['torch'], torch.Tensor)
    torch.manual_seed(0)  # what a restarted run starts from
    hook.after_load_checkpoint(fake_runner(0), ckpt)
    hook.before_train_iter(fake_runner(4), 0)
    assert torch.equal(torch.rand(3), expected)
    # Only once: later iterations keep drawing.
    after = torch.get_rng_state()
    hook.before_train_iter(fake_runner(5), 0)
    assert torch.equal(torch.get_rng_state(), after)


def test_load_from_does_not_restore(tmp_path):
    hook = RNGStateHook()
    ckpt, _ = saved_checkpoint(tmp_path, hook, 4)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    hook.after_load_checkpoint(fake_runner(0), ckpt)
    hook.before_train_iter(fake_runner(0), 0)  # fine-tuning starts at 0
    assert torch.equal(torch.get_rng_state(), state)


def test_checkpoint_without_state_is_fine():
    hook = RNGStateHook()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    hook.after_load_checkpoint(fake_runner(0), dict(meta=dict(iter=4)))
    hook.before_train_iter(fake_runner(4), 0)
    assert torch.equal(torch.get_rng_state(), state)


def test_distributed_is_not_restored(tmp_path, monkeypatch):
    hook = RNGStateHook()
    ckpt, _ = saved_checkpoint(tmp_path, hook, 4)
    monkeypatch.setattr(rng_state_hook, 'get_world_size', lambda: 2)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    hook.after_load_checkpoint(fake_runner(0), ckpt)
    hook.before_train_iter(fake_runner(4), 0)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_state_round_trip(tmp_path):
    torch.cuda.init()
    hook = RNGStateHook()
    torch.cuda.manual_seed_all(7)
    ckpt = dict(meta=dict(iter=2))
    hook.before_save_checkpoint(fake_runner(2), ckpt)
    expected = torch.rand(3, device='cuda')
    torch.cuda.manual_seed_all(0)
    hook.after_load_checkpoint(fake_runner(0), ckpt)
    hook.before_train_iter(fake_runner(2), 0)
    assert torch.equal(torch.rand(3, device='cuda'), expected)
