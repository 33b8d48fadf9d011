"""The single comparison: train or load, evaluate and time every model.

:func:`compare_model` trains a model (or loads its checkpoint), tests it,
counts its FLOPs and measures its memory; :func:`time_models` then times
all models' inference round-robin, and :func:`write_latencies` keeps each
model's latency as a file of the result store.
"""
import copy
import gc
import itertools
import os.path as osp
import time
from typing import List

import numpy as np
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.utils import mkdir_or_exist

from . import ROOT
from .benchmark import (PARTS, StepTimerHook, cycle, inference_step,
                        measure_latency)
from .config_rewrites import set_data_root, set_max_iters, set_seed
from .memory import PeakMemory
from .provenance import code_commit, code_files, model_digest
from .results import latency_path, write_latency
from .specs import ModelSpec
from .training import train, without_validation


def load_cfg(spec: ModelSpec, args) -> Config:
    """The config of one model with every command-line change applied."""
    cfg = Config.fromfile(spec.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.max_iters:
        set_max_iters(cfg, args.max_iters)
    if args.seed is not None:
        set_seed(cfg, args.seed)
    cfg.work_dir = osp.join(args.work_dir, spec.name)
    # Runners of one process share loggers and visualisers by experiment
    # name, which defaults to the config's file name: the ablations would
    # write into each other's logs.
    cfg.experiment_name = spec.name
    return cfg


def time_train_steps(cfg: Config, checkpoint: str, num_iters: int):
    """Time ``num_iters`` training steps from ``checkpoint``, then discard.

    Starting from the trained weights makes the work that depends on the
    predictions (positive samples, mined keys) like that of late training.
    The run keeps the config's data, batch size and
    optimizer but has no LR schedule, validation or checkpointing, and uses
    its own work dir so its logs do not mix with the evaluation's.

    Returns:
        tuple: The :class:`StepTimerHook` and the :class:`PeakMemory`.
    """
    cfg = without_validation(cfg)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=num_iters, val_interval=num_iters)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None
    cfg.load_from = checkpoint
    cfg.resume = False
    cfg.work_dir = osp.join(cfg.work_dir, 'step_timing')
    cfg.experiment_name = f'{cfg.experiment_name}_step_timing'
    runner = Runner.from_cfg(cfg)
    timer = StepTimerHook()
    runner.register_hook(timer)
    device = next(runner.model.parameters()).device
    with PeakMemory(device) as memory:
        runner.train()
    return timer, memory


def batch1_loader(cfg: Config):
    """The test data loader with one image per batch and no workers.

    Workers would compete with the model for the CPU while it is timed.
    """
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    return Runner.build_dataloader(loader_cfg)


class TensorForward(torch.nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` for given samples.

    mmdet's get_flops.py binds the samples to ``model.forward`` with
    ``functools.partial``; wrapping does the same without changing the
    model.
    """

    def __init__(self, model: torch.nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode='tensor')


def count_flops(model: torch.nn.Module, cfg: Config, num_images: int):
    """Mean FLOPs of the tensor-mode forward over test images.

    Counted as mmdet's get_flops.py does: mmengine's jit-traced count (one
    multiply-add is one FLOP) of backbone, neck and head forward, without
    post-processing, at the padded input size.

    Returns:
        tuple[float, list]: Mean FLOPs and the last ``[H, W]`` input size.
    """
    flops, shape = [], None
    for data in itertools.islice(batch1_loader(cfg), num_images):
        data = model.data_preprocessor(data)
        shape = list(data['inputs'].shape[-2:])
        info = get_model_complexity_info(
            TensorForward(model, data['data_samples']),
            inputs=data['inputs'],
            show_table=False,
            show_arch=False)
        flops.append(info['flops'])
    return float(np.mean(flops)), shape


def error_text(error: BaseException) -> str:
    """``Type: first line of the message`` for a report."""
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return f'{name}: {lines[0]}' if lines else name


def compare_model(spec: ModelSpec, args, device: torch.device) -> tuple:
    """Train or load, evaluate and measure one model, all but its latency.

    Returns:
        tuple: The report entry (``latency`` None until :func:`time_models`
        fills it), the model in eval mode on ``device`` and its config.
    """
    cfg = load_cfg(spec, args)
    mkdir_or_exist(cfg.work_dir)
    notes = {}
    train_step, train_memory, train_device = None, None, None
    if spec.checkpoint is None:
        print_log(f'[compare] {spec.name}: training {spec.config} for '
                  f'{cfg.train_cfg.max_iters} iterations in {cfg.work_dir}')
        runner, timer, memory = train(cfg)
        train_memory, train_device = memory.as_dict(), str(memory.device)
        try:
            train_step = timer.summary(args.step_warmup)
        except ValueError as e:
            notes['train_step'] = str(e)
        checkpoint = find_latest_checkpoint(cfg.work_dir)
        trained_iters = cfg.train_cfg.max_iters
    else:
        checkpoint = spec.checkpoint
        trained_iters = None
        cfg_eval = copy.deepcopy(cfg)
        cfg_eval.load_from = checkpoint
        runner = Runner.from_cfg(cfg_eval)
    train_batch_size = cfg.train_dataloader.batch_size

    print_log(f'[compare] {spec.name}: evaluating {checkpoint}')
    metrics = runner.test()
    model = runner.model.to(device).eval()
    del runner

    if spec.checkpoint is not None:
        if args.eval_only:
            notes['train_step'] = 'not measured (--eval-only)'
        else:
            print_log(f'[compare] {spec.name}: timing '
                      f'{args.step_warmup + args.step_iters} training steps '
                      f'from the checkpoint')
            timer, memory = time_train_steps(
                cfg, checkpoint, args.step_warmup + args.step_iters)
            train_step = timer.summary(args.step_warmup)
            train_memory, train_device = memory.as_dict(), str(memory.device)
    gc.collect()

    # Latency is timed later with all models round-robin (time_models);
    # here the warm-up images measure the peak memory of inference alone.
    step = inference_step(model, 'full')
    with PeakMemory(device) as infer_memory:
        for data in itertools.islice(
                cycle(batch1_loader(cfg)), max(1, args.num_warmup)):
            step(data)

    flops, flops_shape = None, None
    try:
        flops, flops_shape = count_flops(model, cfg, args.flops_images)
    # The tracer fails on some heads' Python control flow or ops; one model
    # without a FLOP count must not end a comparison that trained for hours.
    except Exception as e:
        notes['flops'] = error_text(e)
        print_log(f'[compare] {spec.name}: FLOPs n/a: {notes["flops"]}')

    metrics = {k: float(v) for k, v in metrics.items()}
    for key in ('bbox_mAP', 'segm_mAP'):
        if f'coco/{key}' not in metrics:
            notes[key] = ('the evaluator returned no value (e.g. no '
                          'detections at all)')
    entry = dict(
        name=spec.name,
        config=spec.config,
        checkpoint=checkpoint,
        trained_iters=trained_iters,
        metrics=metrics,
        bbox_mAP=metrics.get('coco/bbox_mAP'),
        segm_mAP=metrics.get('coco/segm_mAP'),
        params=sum(p.numel() for p in model.parameters()),
        flops=flops,
        flops_input_shape=flops_shape,
        latency=None,
        floor_latency=None,
        head_overhead_ms=None,
        train_step=train_step,
        train_batch_size=train_batch_size,
        train_device=train_device,
        peak_memory=dict(inference=infer_memory.as_dict(), train=train_memory),
        notes=notes)
    return entry, model, cfg


def time_models(entries: List[dict], models: list, cfgs: List[Config],
                args, device: torch.device) -> None:
    """Time every model's inference, round-robin, and fill the entries.

    Each round draws the next test image of every model's own loader and
    runs, one right after the other, the full model and the floor of each
    model. A machine whose speed drifts (other processes, turbo, thermal)
    then slows all models alike: timed one model after another, two runs of
    the same backbone here differed by 20%, more than the heads do.
    """
    names = [entry['name'] for entry in entries]
    loaders = [cycle(batch1_loader(cfg)) for cfg in cfgs]
    steps = {}
    for name, model in zip(names, models):
        for part in PARTS:
            step = inference_step(model, part)
            steps[(name, part)] = (
                lambda batches, step=step, name=name: step(batches[name]))
    print_log(f'[compare] timing {args.num_images} images '
              f'(+{args.num_warmup} warm-up) of {names} round-robin on '
              f'{device}')
    latency = measure_latency(
        steps, (dict(zip(names, batch)) for batch in zip(*loaders)),
        num_iters=args.num_images,
        num_warmup=args.num_warmup,
        device=device)
    for entry in entries:
        full, floor = (latency[(entry['name'], part)]
                       for part in ('full', 'floor'))
        entry.update(
            latency=full,
            floor_latency=floor,
            head_overhead_ms=full['median_ms'] - floor['median_ms'])


def write_latencies(report: dict, cfgs: List[Config],
                    latency_dir: str) -> List[str]:
    """Write ``<latency_dir>/<model>.json`` for every timed model: its
    latency and floor, the machine, and the config, model digest and code
    commit it was measured for (:func:`~.results.write_latency`)."""
    settings = report['settings']
    paths = []
    for entry, cfg in zip(report['models'], cfgs):
        files = code_files(cfg)
        path = latency_path(latency_dir, entry['name'])
        write_latency(
            path,
            dict(
                name=entry['name'],
                config=osp.relpath(osp.abspath(entry['config']), ROOT),
                code_commit=code_commit(files, ROOT),
                model_digest=model_digest(cfg),
                device=settings['device'],
                device_name=settings['device_name'],
                threads=settings['threads'],
                latency={
                    k: v
                    for k, v in entry['latency'].items()
                    if k != 'latencies_ms'
                },
                floor_ms=entry['floor_latency']['median_ms'],
                num_images=settings['num_images'],
                torch=settings['torch'],
                date=time.strftime('%Y-%m-%d')))
        paths.append(path)
    return paths
