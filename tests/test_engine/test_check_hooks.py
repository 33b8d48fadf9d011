"""StrictNumClassCheckHook, check_num_classes and
StrictCheckInvalidLossHook."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop

from mmdet.engine.hooks import NumClassCheckHook
from mmdet.registry import HOOKS, MODELS
from mmdet_pep.engine import (StrictCheckInvalidLossHook,
                              StrictNumClassCheckHook, check_num_classes)
from pep_testing import tiny_detector_cfg, tiny_head_cfg


class _Data(torch.utils.data.Dataset):

    def __init__(self, classes):
        self.metainfo = dict(classes=classes)

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        return idx


class _Loop(BaseLoop):

    def run(self):
        pass


THREE = ('a', 'b', 'c')


@pytest.fixture(scope='module')
def detector():
    return MODELS.build(tiny_detector_cfg())


def test_registered():
    assert isinstance(
        HOOKS.build(dict(type='StrictNumClassCheckHook')), NumClassCheckHook)
    hook = HOOKS.build(dict(type='StrictCheckInvalidLossHook'))
    assert hook.interval == 1


def test_matching_num_classes_pass(detector):
    # The detector has two modules with num_classes (the head and the
    # excavator), both 3: the check must have them to compare ...
    counted = {name for name, m in detector.named_modules()
               if isinstance(getattr(m, 'num_classes', None), int)}
    assert counted == {'mask_head', 'mask_head.excavator'}
    assert detector.mask_head.num_classes == 3
    # ... and it passes (returns, raises nothing) for three classes,
    assert check_num_classes(detector, _Data(THREE),
                             'train_dataloader.dataset') is None
    # and for a data set without classes, which it cannot check,
    assert check_num_classes(detector, _Data(None), 'x') is None
    # while the same call with one class fewer does raise: the passes
    # above are a real comparison, not a check that never fires.
    with pytest.raises(ValueError, match='has 2 classes'):
        check_num_classes(detector, _Data(THREE[:2]), 'x')


@pytest.mark.parametrize('classes', [('a', 'b'), THREE + ('d', )])
def test_mismatch_names_field_numbers_and_dataset(detector, classes):
    with pytest.raises(ValueError) as info:
        check_num_classes(detector, _Data(classes), 'val_dataloader.dataset')
    msg = str(info.value)
    assert msg.startswith('model.mask_head.num_classes = 3, '
                          'model.mask_head.excavator.num_classes = 3 but '
                          'val_dataloader.dataset (_Data) has '
                          f'{len(classes)} classes')
    assert f'Set model.mask_head.num_classes = {len(classes)}' in msg


def test_only_the_mismatching_module_is_named():
    head = tiny_head_cfg()
    head['excavator'] = dict(head['excavator'], num_classes=4)
    cfg = tiny_detector_cfg()
    cfg['mask_head'] = dict(head, test_cfg=cfg['test_cfg'])
    model = MODELS.build(cfg)
    with pytest.raises(ValueError, match=r'^model\.mask_head\.excavator\.'
                       r'num_classes = 4 but'):
        check_num_classes(model, _Data(THREE), 'x')


def test_string_classes_are_refused(detector):
    with pytest.raises(ValueError, match=r"add a comma.*\('abc',\)"):
        check_num_classes(detector, _Data('abc'), 'x')


class _Runner:
    """Loops as properties; touching one that was not asked for fails."""

    def __init__(self, model, allowed, **datasets):
        self.model = model
        self._allowed = allowed
        self._loops = {
            k: _Loop(self, torch.utils.data.DataLoader(v))
            for k, v in datasets.items()
        }

    def _loop(self, mode):
        assert mode in self._allowed, f'{mode}_loop must not be built'
        return self._loops.get(mode)

    train_loop = property(lambda self: self._loop('train'))
    val_loop = property(lambda self: self._loop('val'))
    test_loop = property(lambda self: self._loop('test'))


def test_before_train_checks_train_and_val_sets(detector):
    hook = StrictNumClassCheckHook()
    good = _Runner(detector, ('train', 'val'), train=_Data(THREE),
                   val=_Data(THREE))
    hook.before_train(good)
    bad_val = _Runner(detector, ('train', 'val'), train=_Data(THREE),
                      val=_Data(('a', )))
    with pytest.raises(ValueError, match='val_dataloader.dataset'):
        hook.before_train(bad_val)
    # No validation configured: only the training set.
    hook.before_train(_Runner(detector, ('train', 'val'), train=_Data(THREE)))


def test_mmdet_hook_misses_the_val_set_at_the_start(detector):
    """Why the PEP hook exists: mmdet's checks the val set only when the
    first validation begins."""
    runner = SimpleNamespace(
        model=detector,
        train_dataloader=SimpleNamespace(dataset=_Data(THREE)),
        val_dataloader=SimpleNamespace(dataset=_Data(('a', ))))
    hook = NumClassCheckHook()
    # The wrong val set passes the check at the start of training ...
    assert hook.before_train_epoch(runner) is None
    # ... and is only caught when the first validation begins (after a
    # whole training epoch), with a bare AssertionError.
    with pytest.raises(AssertionError):
        hook.before_val_epoch(runner)
    # PEP's hook catches it before the first iteration.
    with pytest.raises(ValueError, match='val_dataloader.dataset'):
        StrictNumClassCheckHook().before_train(
            _Runner(detector, ('train', 'val'), train=_Data(THREE),
                    val=_Data(('a', ))))


def test_standalone_val_and_test(detector):
    hook = StrictNumClassCheckHook()
    with pytest.raises(ValueError, match='test_dataloader.dataset'):
        hook.before_test(_Runner(detector, ('test', ), test=_Data(('a', ))))
    with pytest.raises(ValueError, match='val_dataloader.dataset'):
        hook.before_val(_Runner(detector, ('val', ), val=_Data(('a', ))))
    hook.before_val_epoch(None)  # replaced by before_val
    hook.before_train_epoch(None)  # replaced by before_train


def fake_runner(iteration):
    return SimpleNamespace(
        iter=iteration, epoch=0, logger=MMLogger.get_current_instance())


def outputs(**values):
    out = dict(loss=torch.tensor(sum(values.values())))
    out.update({k: torch.tensor(v) for k, v in values.items()})
    return out


def test_finite_losses_pass():
    hook = StrictCheckInvalidLossHook()
    errors = []
    runner = SimpleNamespace(iter=0, epoch=0,
                             logger=SimpleNamespace(error=errors.append))
    # Each call returns without raising and logs no error.
    assert hook.after_train_iter(
        runner, 0, None, outputs(loss_mask=0.5, loss_perceive=1.0)) is None
    assert hook.after_train_iter(runner, 0, None, None) is None
    # Logged non-loss values are not checked ...
    assert hook.after_train_iter(
        runner, 0, None, dict(loss=torch.tensor(1.), acc=math.nan)) is None
    assert errors == []
    # ... but the same NaN under a loss key is (the calls above did check).
    with pytest.raises(FloatingPointError, match='loss_acc'):
        hook.after_train_iter(runner, 0, None,
                              dict(loss=torch.tensor(1.), loss_acc=math.nan))
    assert len(errors) == 1 and 'loss_acc' in errors[0]


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_loss_raises_with_iteration_and_terms(bad):
    hook = StrictCheckInvalidLossHook()
    from mmdet.structures import DetDataSample
    batch = dict(data_samples=[
        DetDataSample(metainfo=dict(img_path=f'im{i}.png')) for i in range(6)
    ])
    with pytest.raises(FloatingPointError) as info:
        hook.after_train_iter(fake_runner(41), 0, batch,
                              outputs(loss_mask=0.5, loss_graph=bad))
    msg = str(info.value)
    assert msg.startswith(f'Non-finite loss at iteration 42 (epoch 1): '
                          f'loss = {float(bad)}')
    assert f"'loss_graph': {float(bad)}" in msg and 'loss_mask' not in msg
    assert "['im0.png', 'im1.png', 'im2.png', 'im3.png', '... (6 images)']" \
        in msg


def test_interval():
    hook = StrictCheckInvalidLossHook(interval=2)
    nan = outputs(loss_mask=math.nan)
    hook.after_train_iter(fake_runner(0), 0, None, nan)  # iteration 1
    with pytest.raises(FloatingPointError, match='iteration 2 '):
        hook.after_train_iter(fake_runner(1), 0, None, nan)
