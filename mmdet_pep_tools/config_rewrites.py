"""Rewrites of a loaded config that the tools apply from their command line.

``tools/demo.py`` and ``tools/analysis_tools/compare.py`` point a config at
another data set, shorten or lengthen its schedule and fix its seed; these
functions do it once for both (and for any config of any method, since they
touch only the data loaders, evaluators, schedule and runtime, never the
model).
"""
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config, ConfigDict

SPLITS = ('train', 'val', 'test')


def _dataset(loader: ConfigDict) -> ConfigDict:
    """The innermost dataset of a loader (through RepeatDataset &c.)."""
    dataset = loader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset


def set_data_root(cfg: Config,
                  data_root: str,
                  ann_files: Optional[Dict[str, str]] = None,
                  img_prefixes: Optional[Dict[str, str]] = None) -> None:
    """Point every data loader and evaluator of ``cfg`` at ``data_root``.

    Args:
        cfg: The config, changed in place.
        data_root: The new data root of the train, val and test loaders.
        ann_files: Annotation file per split (``'train'``, ``'val'``,
            ``'test'``), relative to ``data_root``; a split not given keeps
            its config's file name.
        img_prefixes: Image folder per split, relative to ``data_root``
            (``data_prefix.img``); a split not given keeps its config's.

    Each evaluator with an ``ann_file`` (``CocoMetric``) is given the
    annotation file of its split's loader, joined to ``data_root``.
    """
    ann_files = ann_files or {}
    img_prefixes = img_prefixes or {}
    unknown = (set(ann_files) | set(img_prefixes)) - set(SPLITS)
    if unknown:
        raise ValueError(f'unknown splits {sorted(unknown)}; the splits are '
                         f'{SPLITS}')
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = _dataset(loader)
        dataset.data_root = data_root
        if split in ann_files:
            dataset.ann_file = ann_files[split]
        if split in img_prefixes:
            dataset.data_prefix = dict(
                dataset.get('data_prefix') or {}, img=img_prefixes[split])
        evaluators = cfg.get(f'{split}_evaluator')
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for evaluator in evaluators or []:
            if 'ann_file' in evaluator:
                evaluator.ann_file = osp.join(data_root, dataset.ann_file)


def set_max_iters(cfg: Config, max_iters: int) -> None:
    """Shorten or lengthen an iteration-based schedule to ``max_iters``.

    The LR schedule keeps its shape: every scheduler's ``begin``, ``end``
    and ``milestones`` are scaled by ``max_iters`` over the config's
    ``train_cfg.max_iters`` (rounded; an ``end`` stays after its ``begin``
    and within ``max_iters``, a milestone stays >= 1). Validation and the
    checkpoint come at the end of the run, and the logger logs at least
    once.

    Raises:
        ValueError: If ``max_iters`` < 1 or the loop is not an
            ``IterBasedTrainLoop``.
    """
    if max_iters < 1:
        raise ValueError(f'max_iters must be >= 1, got {max_iters}')
    loop = cfg.train_cfg.get('type')
    if loop != 'IterBasedTrainLoop':
        raise ValueError(
            f'max_iters needs an IterBasedTrainLoop, got {loop}')
    scale = max_iters / cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    for sched in cfg.get('param_scheduler') or []:
        begin = round(sched.get('begin', 0) * scale)
        sched.begin = begin
        if 'end' in sched:
            sched.end = min(
                max(begin + 1, round(sched.end * scale)), max_iters)
        if 'milestones' in sched:
            sched.milestones = [
                max(1, round(m * scale)) for m in sched.milestones
            ]
    hooks = cfg.get('default_hooks') or {}
    if hooks.get('checkpoint'):
        hooks.checkpoint.interval = max_iters
    if hooks.get('logger') and 'interval' in hooks.logger:
        hooks.logger.interval = min(hooks.logger.interval, max_iters)


def set_seed(cfg: Config,
             seed: int,
             deterministic: Optional[bool] = None) -> None:
    """Fix the seed of mmengine's Runner (``randomness.seed``).

    Without it the Runner draws a random seed per run (and logs it).
    ``deterministic`` is set when given; other ``randomness`` keys stay.
    """
    randomness = dict(cfg.get('randomness') or {}, seed=seed)
    if deterministic is not None:
        randomness['deterministic'] = deterministic
    cfg.randomness = randomness


def _set_key(node, key: str, value) -> int:
    """Set ``key`` to ``value`` wherever a nested dict has it; the count."""
    count = 0
    if isinstance(node, dict):
        for k, item in node.items():
            if k == key:
                node[k] = value
                count += 1
            else:
                count += _set_key(item, key, value)
    elif isinstance(node, (list, tuple)):
        count += sum(_set_key(item, key, value) for item in node)
    return count


def set_classes(cfg: Config, metainfo: dict) -> None:
    """Train and test ``cfg`` on another class list.

    Every data set gets ``metainfo`` (``classes``, ``palette``) and every
    ``num_classes`` of the model (heads, their assigners) becomes
    ``len(metainfo['classes'])``.

    Raises:
        ValueError: If the model has no ``num_classes`` to set.
    """
    num_classes = len(metainfo['classes'])
    if not _set_key(cfg.model, 'num_classes', num_classes):
        raise ValueError('set_classes: the model config has no '
                         'num_classes to set')
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            _dataset(loader).metainfo = dict(metainfo)


def set_image_scale(cfg: Config, scale) -> None:
    """Resize to ``scale`` ((w, h)) in every data loader's pipeline.

    Every ``Resize`` with a ``scale`` is changed; other resizing transforms
    (random choice, multi-scale) are left alone.

    Raises:
        ValueError: If no pipeline has a ``Resize`` to change.
    """
    count = 0
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for transform in _dataset(loader).get('pipeline') or []:
            if transform.get('type') == 'Resize' and 'scale' in transform:
                transform.scale = tuple(scale)
                count += 1
    if not count:
        raise ValueError('set_image_scale: no Resize with a scale in the '
                         'data pipelines')
