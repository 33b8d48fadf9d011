"""Where a model spends its inference and training step, stage by stage.

Runs the model under ``torch.profiler`` and reports, for each stage, its
time per image (inference) or per training step (forward, backward and
update of one batch), inclusive of the stages inside it, and its share.
The model code is not changed; stages come from

- forward hooks on sub-modules: ``backbone``, ``neck``, each head's
  ``forward`` and, for PEP, its perceiving and descriptor towers, the
  general feature B, the excavator's feature and the perceiving and mask
  losses;
- a wrapper around each head's ``predict_by_feat`` and ``loss_by_feat``,
  the public methods of mmdet's head contract (post-processing, losses);
- the profiler labels PEP's head sets itself, ``PEPHead.<stage>``: target
  building, the excavator in training, the graph loss, and each
  inference stage (see ``PEPHead.predict_by_feat``).

Backward passes are one ``backward`` stage (autograd runs them outside the
hooks); the optimizer step is ``optimizer``.

Example::

    python tools/analysis_tools/profile_model.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py --checkpoint CKPT \\
        --mode infer train --num-iters 20 --threads 2

Without ``--checkpoint`` the weights are random: an untrained head keeps
more (or fewer) candidates than a trained one, so post-processing shares
differ; give a checkpoint for real figures.
"""
import argparse
import contextlib
import functools
import json
import time
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmdet.registry import MODELS
from mmdet_pep_tools.benchmark import cycle

# Sub-modules of PEP's head (attributes of the detector's ``mask_head``)
# marked with forward hooks: label -> attributes.
PEP_MODULES = {
    'head/perceiving towers': ('cls_convs', 'conv_cls'),
    'head/descriptor towers': ('desc_convs', 'conv_desc'),
    'head/general feature B': ('mask_feature_head', ),
    'head/excavator feature': ('excavator', ),
    'loss/perceiving': ('loss_perceive', ),
    'loss/mask': ('loss_mask', ),
}
# Profiler labels the model sets itself (``record_function``).
MODEL_PREFIX = 'PEPHead.'
PREFIX = 'stage:'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Profile a model\'s inference and training step by stage')
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument(
        '--mode',
        nargs='+',
        choices=['infer', 'train'],
        default=['infer', 'train'])
    parser.add_argument(
        '--num-iters', type=int, default=10, help='profiled iterations')
    parser.add_argument(
        '--num-warmup', type=int, default=3, help='untimed iterations first')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads')
    parser.add_argument('--out', help='write the report as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.num_iters < 1 or args.num_warmup < 0:
        parser.error('--num-iters must be >= 1 and --num-warmup >= 0')
    return args


def _hook_module(module: torch.nn.Module, label: str) -> list:
    """Mark ``module``'s forward passes as stage ``label``."""
    stack = []

    def pre(*_):
        scope = torch.profiler.record_function(PREFIX + label)
        scope.__enter__()
        stack.append(scope)

    def post(*_):
        stack.pop().__exit__(None, None, None)

    return [
        module.register_forward_pre_hook(pre),
        module.register_forward_hook(post)
    ]


@contextlib.contextmanager
def stages_marked(model: torch.nn.Module):
    """Mark the stages of ``model`` (see the module docstring) while in
    the context; the hooks and wrappers are removed on exit."""
    handles, patched = [], []

    def wrap(owner, name: str, label: str):
        method = getattr(owner, name)

        @functools.wraps(method)
        def marked(*args, **kwargs):
            with torch.profiler.record_function(PREFIX + label):
                return method(*args, **kwargs)

        patched.append((owner, name))
        setattr(owner, name, marked)

    for name in ('backbone', 'neck'):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            handles += _hook_module(module, name)
    for name in ('bbox_head', 'mask_head'):
        head = getattr(model, name, None)
        if head is None:
            continue
        handles += _hook_module(head, f'{name} forward')
        for method in ('predict_by_feat', 'loss_by_feat'):
            wrap(head, method, f'{name}.{method}')
        if type(head).__name__ == 'PEPHead':
            for label, names in PEP_MODULES.items():
                for attr in names:
                    target = getattr(head, attr)
                    if target is None:  # a mechanism switched off
                        continue
                    modules = (target if isinstance(
                        target, torch.nn.ModuleList) else [target])
                    for module in modules:
                        handles += _hook_module(module, label)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for owner, name in reversed(patched):
            delattr(owner, name)  # the class's method shows again


def stage_times(prof, num_iters: int) -> Dict[str, dict]:
    """Inclusive CPU time per iteration and call count of every stage: the
    tool's marks (without their prefix) and the model's own labels."""
    times = {}
    for event in prof.key_averages():
        if event.key.startswith((PREFIX, MODEL_PREFIX)):
            label = event.key.removeprefix(PREFIX)
            times[label] = dict(
                ms=event.cpu_time_total / 1000 / num_iters,
                calls=event.count / num_iters)
    return times


def profile_steps(step, batches, num_iters: int,
                  num_warmup: int) -> Tuple[float, Dict[str, dict]]:
    """Mean wall time (ms) of ``step`` and its stage times."""
    for _ in range(num_warmup):
        step(next(batches))
    data = [next(batches) for _ in range(num_iters)]
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for batch in data:
            step(batch)
        wall = (time.perf_counter() - start) * 1000 / num_iters
    return wall, stage_times(prof, num_iters)


def build(cfg: Config, checkpoint: str = None) -> torch.nn.Module:
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    else:
        model.init_weights()
    return model


def profile_inference(model, cfg: Config, args) -> Tuple[float, dict]:
    loader_cfg = dict(cfg.test_dataloader)
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    batches = cycle(Runner.build_dataloader(loader_cfg))
    model.eval()

    def step(data):
        with torch.no_grad():
            model.test_step(data)

    with stages_marked(model):
        return profile_steps(step, batches, args.num_iters, args.num_warmup)


def profile_training(model, cfg: Config, args) -> Tuple[float, dict]:
    loader_cfg = dict(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    batches = cycle(Runner.build_dataloader(loader_cfg))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.)

    def step(data):
        data = model.data_preprocessor(data, True)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        with torch.profiler.record_function(PREFIX + 'backward'):
            loss.backward()
        with torch.profiler.record_function(PREFIX + 'optimizer'):
            optimizer.step()

    with stages_marked(model):
        return profile_steps(step, batches, args.num_iters, args.num_warmup)


def table(title: str, wall: float, times: Dict[str, dict]) -> List[str]:
    lines = [f'{title}: {wall:.1f} ms per iteration (wall clock)', '',
             '| stage | ms | share | calls |', '|:---|---:|---:|---:|']
    for label, t in sorted(times.items(), key=lambda kv: -kv[1]['ms']):
        lines.append(f'| {label} | {t["ms"]:.1f} | '
                     f'{t["ms"] / wall:.0%} | {t["calls"]:g} |')
    return lines


def main(argv=None):
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build(cfg, args.checkpoint)
    report = dict(config=args.config, checkpoint=args.checkpoint,
                  threads=torch.get_num_threads())
    lines = []
    for mode, run in (('infer', profile_inference),
                      ('train', profile_training)):
        if mode not in args.mode:
            continue
        wall, times = run(model, cfg, args)
        report[mode] = dict(wall_ms=wall, stages=times)
        title = ('Inference, one image' if mode == 'infer' else
                 f'Training step, {cfg.train_dataloader.batch_size} images')
        lines += table(title, wall, times) + ['']
    print('\n'.join(lines))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
