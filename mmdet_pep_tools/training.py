"""Training and testing one run with mmengine's Runner.

:func:`train` trains a config, timing its steps and watching its memory.
:func:`train_and_test` is one run of the multi-seed protocol: it trains
(or reuses a finished training of the same weights) and tests the
checkpoint on the config's test split and on its val split.
"""
import copy
import json
import os.path as osp
import time
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

from .benchmark import StepTimerHook
from . import ROOT
from .displaced import displaced_file
from .provenance import code_commit, training_code_files
from .memory import PeakMemory


def without_validation(cfg: Config) -> Config:
    """A copy of ``cfg`` whose Runner does not validate while training.

    The comparison evaluates once with the test loop; the validation the
    training loop runs at its end would repeat that work.
    """
    cfg = copy.deepcopy(cfg)
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    return cfg


def train(cfg: Config):
    """Train one model, timing its steps and watching its memory.

    Returns:
        tuple: The Runner (trained, ready to test), its
        :class:`StepTimerHook` and the :class:`PeakMemory` of training.
    """
    runner = Runner.from_cfg(without_validation(cfg))
    timer = StepTimerHook()
    runner.register_hook(timer)
    device = next(runner.model.parameters()).device
    with PeakMemory(device) as memory:
        runner.train()
    return runner, timer, memory


def final_checkpoint(cfg: Config) -> str:
    """Where the Runner saves the last checkpoint of ``cfg``'s schedule."""
    loop = cfg.train_cfg
    if loop.get('type') == 'IterBasedTrainLoop':
        return osp.join(cfg.work_dir, f'iter_{loop.max_iters}.pth')
    return osp.join(cfg.work_dir, f'epoch_{loop.max_epochs}.pth')


def on_val_split(cfg: Config, checkpoint: str) -> Config:
    """A copy of ``cfg`` that tests ``checkpoint`` on the val split.

    Its test loader and evaluator are the val loader and the test
    evaluator (``CrowdCocoMetric`` in the protocol) pointed at the val
    annotation file. Recipes are chosen on these numbers; the held-out
    test split reports them.
    """
    val_cfg = without_validation(cfg)
    val_cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    evaluators = copy.deepcopy(cfg.test_evaluator)
    val_ann = cfg.val_evaluator.get('ann_file') if isinstance(
        cfg.val_evaluator, dict) else None
    for evaluator in (evaluators
                      if isinstance(evaluators, list) else [evaluators]):
        if val_ann and 'ann_file' in evaluator:
            evaluator.ann_file = val_ann
            if 'displaced_file' in evaluator:  # DisplacedCocoMetric
                evaluator.displaced_file = displaced_file(val_ann)
    val_cfg.test_evaluator = evaluators
    val_cfg.load_from = checkpoint
    val_cfg.work_dir = osp.join(cfg.work_dir, 'val_split')
    val_cfg.experiment_name = f'{cfg.experiment_name}_val_split'
    return val_cfg


def train_and_test(cfg: Config,
                   digest: str,
                   commit: str,
                   step_warmup: int,
                   train_digest: Optional[str] = None) -> tuple:
    """Train ``cfg`` (or take its finished checkpoint) and test it.

    A work dir whose final checkpoint exists and whose ``fingerprint.json``
    holds the training code's commit (:func:`training_code_files`; the
    last commit of every code file, ``commit``, in older stamps) and
    ``train_digest`` (see :func:`training_digest`) was trained with these
    weights' config and this model code: by a run that stopped before
    writing its result, or for a config that differs only in how it is
    evaluated (``model.test_cfg``, the test data or metric, the metric's
    code). It is tested, not trained again. A stamp without a training
    digest (older runs) is reused only for the same whole config digest.

    The checkpoint is tested twice: on the config's test split (the
    held-out split of the synthetic sets) and on its val split.

    A training writes its cost (step summary, minutes) into the stamp, so
    a reused checkpoint reports the cost of the training that made it.

    Returns:
        tuple: The test metrics, the val metrics, the training-step
        summary and the training time in minutes (of the training that
        made a reused checkpoint; None where its stamp has none).
    """
    mkdir_or_exist(cfg.work_dir)
    stamp = osp.join(cfg.work_dir, 'fingerprint.json')
    train_commit = code_commit(training_code_files(cfg), ROOT)
    fingerprint_now = dict(config_digest=digest, code_commit=commit,
                           training_commit=train_commit)
    if train_digest is not None:
        fingerprint_now['training_digest'] = train_digest
    checkpoint = final_checkpoint(cfg)
    reuse = osp.isfile(checkpoint) and osp.isfile(stamp)
    if reuse:
        with open(stamp) as f:
            old = json.load(f)
        same = ('training_digest', train_digest) if old.get(
            'training_digest') else ('config_digest', digest)
        reuse = (not train_commit.endswith('+dirty')
                 and old.get('training_commit', old.get('code_commit'))
                 == train_commit and old.get(same[0]) == same[1])
    if reuse:
        print_log(f'[compare] testing the finished {checkpoint}')
        cfg_test = without_validation(cfg)
        cfg_test.load_from = checkpoint
        metrics = Runner.from_cfg(cfg_test).test()
        return (metrics, Runner.from_cfg(on_val_split(cfg, checkpoint)).test(),
                old.get('train_step'), old.get('train_minutes'))
    with open(stamp, 'w') as f:
        json.dump(fingerprint_now, f)
    start = time.perf_counter()
    runner, timer, _ = train(cfg)
    minutes = (time.perf_counter() - start) / 60
    try:
        step = timer.summary(step_warmup)
    except ValueError:  # fewer iterations than the warm-up
        step = None
    with open(stamp, 'w') as f:
        json.dump(dict(fingerprint_now, train_step=step,
                       train_minutes=minutes), f)
    metrics = runner.test()
    val_metrics = Runner.from_cfg(on_val_split(cfg, checkpoint)).test()
    return metrics, val_metrics, step, minutes
