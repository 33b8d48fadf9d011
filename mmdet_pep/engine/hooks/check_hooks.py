"""Start-up and per-iteration checks that turn silent faults into errors.

- :class:`StrictNumClassCheckHook`: ``num_classes`` of the model against the
  classes of every data set, before the first iteration. mmdet's
  :class:`~mmdet.engine.hooks.NumClassCheckHook` checks the validation set
  only when the first validation starts (for the synthetic schedule: after
  all 1200 training iterations), and with an ``assert`` that does not name
  the config field.
- :class:`StrictCheckInvalidLossHook`: a non-finite loss stops training with
  the iteration, the offending loss terms and the images of the batch.
  mmdet's :class:`~mmdet.engine.hooks.CheckInvalidLossHook` raises an
  ``AssertionError`` whose message is ``None`` and logs "loss become
  infinite or NaN!" without the iteration.
"""
from typing import Optional, Sequence

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from mmdet.engine.hooks import CheckInvalidLossHook, NumClassCheckHook
from mmdet.registry import HOOKS

from ...utils.deprecation import deprecated_alias


def check_num_classes(model: torch.nn.Module, dataset,
                      dataset_field: str) -> None:
    """Raise if a module's ``num_classes`` differs from the data set's.

    Modules are those mmdet's ``NumClassCheckHook`` checks: every module
    with an integer ``num_classes`` except RPN heads, VGG and
    ``FusedSemanticHead``.

    Args:
        model (nn.Module): The detector (unwrapped or wrapped).
        dataset: A data set with ``metainfo['classes']``.
        dataset_field (str): Where the data set is configured, for the
            message, e.g. ``'train_dataloader.dataset'``.

    Raises:
        ValueError: On a mismatch, naming the model field
            (``model.<module>.num_classes``), both numbers and
            ``dataset_field``; or if ``classes`` is a string.
    """
    from mmcv.cnn import VGG

    from mmdet.models.roi_heads.mask_heads import FusedSemanticHead
    if is_model_wrapper(model):
        model = model.module
    classes = getattr(dataset, 'metainfo', {}).get('classes', None)
    if classes is None:
        return
    if isinstance(classes, str):
        raise ValueError(
            f"{dataset_field}.metainfo['classes'] is the string "
            f'{classes!r}; it must be a tuple of names (add a comma for one '
            f'class: ({classes!r},))')
    wrong = []
    for name, module in model.named_modules():
        num = getattr(module, 'num_classes', None)
        if (not isinstance(num, int) or name.endswith('rpn_head')
                or isinstance(module, (VGG, FusedSemanticHead))):
            continue
        if num != len(classes):
            field = f'model.{name}.num_classes' if name else \
                'model.num_classes'
            wrong.append(f'{field} = {num}')
    if wrong:
        shown = tuple(classes)
        if len(shown) > 10:
            shown = shown[:10] + ('...', )
        raise ValueError(
            f'{", ".join(wrong)} but {dataset_field} '
            f'({type(dataset).__name__}) has {len(classes)} classes '
            f"(metainfo['classes'] = {shown}). Set {wrong[0].split()[0]} "
            f'= {len(classes)} in the config, or fix the classes of the '
            f'data set')


@HOOKS.register_module()
class StrictNumClassCheckHook(NumClassCheckHook):
    """Check ``num_classes`` against every data set before the first step.

    ``before_train`` checks the training set and, when validation is
    configured, the validation set, so a mismatch stops the run before the
    first iteration rather than at the first validation. ``before_val`` and
    ``before_test`` check the data set of standalone validation and testing
    (``tools/test.py``). Failures raise ``ValueError`` from
    :func:`check_num_classes`.
    """
    priority = 'VERY_HIGH'

    def _check_loop(self, runner, loop: Optional[BaseLoop],
                    field: str) -> None:
        if isinstance(loop, BaseLoop) and hasattr(loop, 'dataloader'):
            check_num_classes(runner.model, loop.dataloader.dataset, field)

    def _check_head(self, runner, mode: str) -> None:
        # Only the loop asked for: the property would build a missing one.
        loop = getattr(runner, f'{mode}_loop')
        self._check_loop(runner, loop, f'{mode}_dataloader.dataset')

    def before_train(self, runner) -> None:
        """Check the training and (if configured) validation sets."""
        self._check_head(runner, 'train')
        self._check_head(runner, 'val')

    def before_train_epoch(self, runner) -> None:
        """Already checked in :meth:`before_train`."""

    def before_val_epoch(self, runner) -> None:
        """Checked in :meth:`before_val` instead."""

    def before_val(self, runner) -> None:
        """Check the validation set."""
        self._check_head(runner, 'val')

    def before_test(self, runner) -> None:
        """Check the test set."""
        self._check_head(runner, 'test')


@HOOKS.register_module()
class StrictCheckInvalidLossHook(CheckInvalidLossHook):
    """Stop training at a non-finite loss and say where it happened.

    Checks every ``interval`` iterations (default: every iteration; the
    check is one scalar comparison) whether the total loss or any logged
    loss term is NaN or infinite. If so it logs and raises
    ``FloatingPointError`` naming the iteration, the non-finite terms and
    the images of the batch. It runs before the checkpoint hook of the same
    iteration, so no checkpoint with the corrupted weights is written.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    def __init__(self, interval: int = 1) -> None:
        super().__init__(interval=interval)

    @staticmethod
    def _image_names(data_batch: Optional[dict],
                     limit: int = 4) -> Sequence[str]:
        samples = (data_batch or {}).get('data_samples', []) or []
        names = [
            s.metainfo.get('img_path', s.metainfo.get('img_id'))
            for s in samples if hasattr(s, 'metainfo')
        ]
        names = [str(n) for n in names if n is not None]
        if len(names) > limit:
            names = names[:limit] + [f'... ({len(names)} images)']
        return names

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Raise ``FloatingPointError`` if a loss is not finite."""
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        bad = {}
        for key, value in outputs.items():
            if 'loss' not in key:
                continue
            value = torch.as_tensor(value, dtype=torch.float64)
            if value.numel() and not torch.isfinite(value).all():
                bad[key] = value.flatten()[0].item()
        if not bad:
            return
        total = bad.get('loss', outputs.get('loss'))
        msg = (f'Non-finite loss at iteration {runner.iter + 1} '
               f'(epoch {runner.epoch + 1}): loss = {float(total)}; '
               f'non-finite: {bad}. The weights were already updated with '
               f'it, so no checkpoint of this iteration is saved.')
        names = self._image_names(data_batch)
        if names:
            msg += f' Images of the batch: {names}.'
        msg += (' Resume from the last checkpoint with a lower learning '
                'rate or gradient clipping, or check these images.')
        runner.logger.error(msg)
        raise FloatingPointError(msg)


# Deprecated names (removed in 0.3.0).
PEPNumClassCheckHook = deprecated_alias(StrictNumClassCheckHook,
                                        'PEPNumClassCheckHook', HOOKS)
PEPCheckInvalidLossHook = deprecated_alias(StrictCheckInvalidLossHook,
                                           'PEPCheckInvalidLossHook', HOOKS)
