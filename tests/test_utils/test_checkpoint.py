"""Checkpoints written by mmengine's Runner load under weights-only mode,
once a program opts in as the tools do
(``mmdet_pep.register_checkpoint_safe_globals``). That importing mmdet_pep
alone changes nothing is tested in test_import_side_effects.py."""
import collections
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmdet.registry import MODELS
from mmdet_pep.utils import (CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError,
                             load_checkpoint_weights_only,
                             register_checkpoint_safe_globals)
from pep_testing import tiny_detector_cfg


@pytest.fixture(autouse=True)
def _opt_in():
    """What tools/train.py and tools/test.py do first."""
    register_checkpoint_safe_globals()


class _Evil:
    """Stands for any class outside the allow-list."""


def _runner(work_dir, **kwargs):
    from mmengine.dataset import pseudo_collate
    from mmdet.testing import demo_mm_inputs

    class ToyData(torch.utils.data.Dataset):

        def __len__(self):
            return 4

        def __getitem__(self, idx):
            packed = demo_mm_inputs(1, [(3, 64, 64)], num_items=[2],
                                    num_classes=3, with_mask=True)
            return dict(inputs=packed['inputs'][0],
                        data_samples=packed['data_samples'][0])

    return Runner(
        model=tiny_detector_cfg(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=pseudo_collate,
            batch_size=2,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.001,
                                          momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1],
                             by_epoch=False),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        default_scope='mmdet',
        **kwargs)


def test_runner_checkpoint_roundtrip_weights_only(tmp_path):
    runner = _runner(str(tmp_path / 'a'))
    runner.train()
    last_step = runner.param_schedulers[0].last_step
    ckpt = osp.join(str(tmp_path / 'a'), 'iter_2.pth')
    assert osp.isfile(ckpt)

    # tools/test.py-style loading (mmengine's loader, weights-only inside).
    state = _load_checkpoint(ckpt, map_location='cpu')
    assert 'message_hub' in state and 'optimizer' in state
    model = MODELS.build(tiny_detector_cfg())
    from mmengine.runner import load_checkpoint
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state['state_dict'][k])

    # --resume: the iteration, optimizer and scheduler state come back.
    resumed = _runner(str(tmp_path / 'b'), resume=True, load_from=ckpt)
    resumed.train_loop  # build loops before resume
    resumed.load_or_resume()
    assert resumed.iter == 2
    assert resumed.optim_wrapper.optimizer.state_dict()['state']
    assert resumed.param_schedulers[0].last_step == last_step > 0


def test_plain_torch_load_weights_only_also_works(tmp_path):
    runner = _runner(str(tmp_path))
    runner.train()
    state = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                       weights_only=True)
    assert state['meta']['iter'] == 2
    assert CHECKPOINT_SAFE_GLOBALS


def test_checkpoint_outside_allow_list_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': collections.OrderedDict(), 'x': _Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth.*_Evil'):
        load_checkpoint_weights_only(path)
    # mmengine's own entry point goes through the same check.
    with pytest.raises(UnsafeCheckpointError, match='allow-list'):
        _load_checkpoint(path, map_location='cpu')


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_plain_mmengine_checkpoint_is_refused_then_resaved(tmp_path):
    """A checkpoint with HistoryBuffer's getattr entries (as plain mmengine
    writes them) is refused, and the re-save tool makes it loadable."""
    import subprocess
    import sys

    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.0)
    state = dict(buf.__dict__, statistics_methods=dict(
        buf._statistics_methods))
    legacy = HistoryBuffer.__new__(HistoryBuffer)
    legacy.__dict__.update(buf.__dict__)
    src = str(tmp_path / 'legacy.pth')

    # Pickle exactly what mmengine's own __getstate__ produces.
    orig = HistoryBuffer.__getstate__
    HistoryBuffer.__getstate__ = lambda self: state
    try:
        torch.save({'message_hub': {'log_scalars': {'loss': legacy}}}, src)
    finally:
        HistoryBuffer.__getstate__ = orig
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_weights_only(src)
    dst = str(tmp_path / 'clean.pth')
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    subprocess.run([
        sys.executable,
        osp.join(root, 'tools/model_converters/resave_checkpoint.py'), src,
        dst
    ], check=True, cwd=root)
    loaded = load_checkpoint_weights_only(dst)
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.0
