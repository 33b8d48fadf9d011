"""Compare PEP, its ablations, SOLOv2, CondInst, EmbedMask, SipMask and
SpatialEmbeddings on one data set.

For every model, one after another, this trains the config with mmengine's
Runner (or loads the checkpoint given for it), evaluates bbox and segm AP
with the config's test evaluator (CocoMetric) and measures:

- inference latency: batch 1 over ``--num-images`` test images after
  ``--num-warmup`` untimed ones; median, 10th/90th percentiles, FPS. After
  the last model is trained, all models are timed round-robin: image by
  image, every model runs in turn, so a drifting machine slows them alike;
- the floor: the data preprocessor, backbone and neck alone, timed on the
  same images right after the full model, so that the head's share (head
  and post-processing) is the difference of the medians;
- training-step time: forward, backward and update of one batch, median of
  the training iterations after ``--step-warmup`` (with a checkpoint, of a
  short extra run started from it);
- parameters; FLOPs with mmengine's ``get_model_complexity_info`` on the
  tensor-mode forward, as mmdet's ``get_flops.py`` does (``n/a`` and the
  reason when counting fails); peak memory of inference (over the warm-up
  images, one model alone) and of training.

It writes ``comparison.md``, ``comparison.json`` and ``comparison.png``
(mask AP against latency) into ``--work-dir`` after every model, and prints
the table at the end. Each model trains in ``<work-dir>/<name>/``.

With ``--seeds`` and/or ``--variants`` it runs the multi-seed protocol
instead: every model is trained once per seed on every data variant (the
synthetic set's ``VARIANTS``: ``demo``, and ``dense`` with larger images,
four classes, smaller objects in larger clusters; generated under
``--data-dir`` when missing) and tested with ``CrowdCocoMetric``. Each
finished run writes ``<results-dir>/<variant>/<model>/seed<S>.json`` (config,
its digest, the commit of the model code behind it, ``--cfg-options``, seed,
variant, every metric); a run whose file exists for the same config digest
and code commit is skipped, so the protocol resumes where it stopped and
accumulates across sessions when the files are committed. After every run,
and with ``--table-only`` without training, ``<results-dir>/README.md`` is
rebuilt from the files: mean ± std over seeds per model and variant, the
mean over variants, and every run. Latency is not measured in this mode (see
the single-run comparison and ``benchmark_cpu.py``).

Latency and inference memory are measured on ``--device``. Training runs
where mmengine's Runner puts the model (a GPU when there is one; set
``CUDA_VISIBLE_DEVICES=`` to train on the CPU), and its step time and memory
are measured there.

Examples::

    # PEP, its Dice-vs-CE and three Tab. 2 ablation configs, SOLOv2,
    # CondInst, EmbedMask, SipMask and SpatialEmbeddings, each for its
    # schedule
    python tools/analysis_tools/compare.py --work-dir work_dirs/comparison

    # A PEP config and its Tab. 2 ablation configs (found by file name)
    python tools/analysis_tools/compare.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py --ablations

    # Three seeds on both data variants, resumable (docs/results/README.md)
    python tools/analysis_tools/compare.py --seeds 0 1 2 \\
        --variants demo dense

    # The same for two models, on a shortened schedule to screen an idea
    python tools/analysis_tools/compare.py \\
        PEP=configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        CondInst=configs/condinst/condinst_r18_fpn_1200it_synthetic.py \\
        --seeds 0 1 2 --variants demo dense --max-iters 400 \\
        --results-dir docs/results/screen_400it

    # Rebuild the table from the result files only
    python tools/analysis_tools/compare.py --table-only --variants demo dense

    # Two given checkpoints, no training at all
    python tools/analysis_tools/compare.py \\
        PEP=configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        SOLOv2=configs/solov2/solov2_r18_fpn_1200it_synthetic.py \\
        --checkpoints PEP=pep.pth SOLOv2=solov2.pth --eval-only
"""
import argparse
import copy
import gc
import itertools
import json
import logging
import os.path as osp
import platform
import time
from typing import List, NamedTuple, Optional

import mmengine
import numpy as np
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.utils import mkdir_or_exist

import mmdet
from mmdet_pep.datasets.synthetic import VARIANTS, generate_dataset, metainfo
from mmdet_pep.utils import set_data_root, set_max_iters, set_seed
from mmdet_pep.utils.config_rewrites import set_classes, set_image_scale
from mmdet_pep.utils.provenance import (code_commit, code_files, config_digest,
                                        training_digest)
from mmdet_pep.utils.results import (is_current, load_results, read_result,
                                     result_path, results_markdown,
                                     write_result)
from mmdet_pep.utils.benchmark import (PARTS, PeakMemory, StepTimerHook, cycle,
                                       device_name, inference_step,
                                       measure_latency)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Every model is a config file; the ablations are the config files of
# configs/pep/ (Tab. 2 rows and the paper's CE mask loss).
DEFAULT_CONFIGS = (
    ('PEP', 'configs/pep/pep_r18_fpn_1200it_synthetic.py'),
    ('PEP-CE', 'configs/pep/pep_r18_fpn_ce-mask_1200it_synthetic.py'),
    ('PEP-baseline', 'configs/pep/pep-baseline_r18_fpn_1200it_synthetic.py'),
    ('PEP-excavate', 'configs/pep/pep-excavate_r18_fpn_1200it_synthetic.py'),
    ('PEP-purify', 'configs/pep/pep-purify_r18_fpn_1200it_synthetic.py'),
    ('SOLOv2', 'configs/solov2/solov2_r18_fpn_1200it_synthetic.py'),
    ('CondInst', 'configs/condinst/condinst_r18_fpn_1200it_synthetic.py'),
    ('EmbedMask', 'configs/embedmask/embedmask_r18_fpn_1200it_synthetic.py'),
    ('SipMask', 'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py'),
    ('SpatialEmbeddings',
     'configs/spatial_embeddings/spatialemb_r18_fpn_1200it_synthetic.py'),
)

# The rows of the paper's Tab. 2: for a PEP config ``pep_<setting>.py``,
# ``pep-<row>_<setting>.py`` in the same folder (configs/pep/).
ABLATIONS = ('baseline', 'excavate', 'purify')


class ModelSpec(NamedTuple):
    """One row of the comparison."""
    name: str
    config: str
    checkpoint: Optional[str] = None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train, evaluate and time instance segmentation models '
        'side by side')
    parser.add_argument(
        'configs',
        nargs='*',
        help='config files, each as PATH or NAME=PATH (NAME labels the row '
        'and names its work dir; default: the file name). Default: PEP, '
        'PEP with the CE mask loss, its three Tab. 2 ablations, SOLOv2, '
        'CondInst, EmbedMask, SipMask and SpatialEmbeddings on the synthetic '
        'set')
    parser.add_argument(
        '--ablations',
        action='store_true',
        help='add the Tab. 2 ablation configs of every PEP config given: '
        'pep-baseline_, pep-excavate_ and pep-purify_<setting>.py next to '
        'pep_<setting>.py, as rows NAME-baseline &c. (the default configs '
        'include them already)')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        default=[],
        help='NAME=PATH to skip training NAME, or one PATH per model in '
        'table order; models without one are trained')
    parser.add_argument(
        '--eval-only',
        action='store_true',
        help='train nothing: needs a checkpoint for every model and leaves '
        'the training-step time out')
    parser.add_argument('--work-dir', default='work_dirs/comparison')
    parser.add_argument(
        '--data-root',
        help='COCO-format data root replacing the configs\' own (the '
        'annotation files and image folders keep their names)')
    parser.add_argument(
        '--max-iters',
        type=int,
        help='train this many iterations instead of the schedule\'s; the LR '
        'schedule is compressed in proportion (iteration-based configs)')
    parser.add_argument(
        '--seed',
        type=int,
        help='seed of every training run (randomness.seed; default: '
        'mmengine draws one per run and logs it)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device for latency, FLOPs and inference memory (default: '
        'cuda when available)')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch.set_num_threads, for training and inference on the CPU '
        '(default: torch\'s own)')
    parser.add_argument(
        '--num-images',
        type=int,
        default=100,
        help='timed test images per model (the test set is gone through '
        'again when it has fewer)')
    parser.add_argument(
        '--num-warmup',
        type=int,
        default=10,
        help='untimed test images before the timed ones')
    parser.add_argument(
        '--step-warmup',
        type=int,
        default=5,
        help='leading training iterations left out of the step time')
    parser.add_argument(
        '--step-iters',
        type=int,
        default=20,
        help='timed iterations of the short run from a given checkpoint')
    parser.add_argument(
        '--flops-images',
        type=int,
        default=5,
        help='test images whose FLOPs are averaged (sizes may differ)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, as in tools/train.py')
    protocol = parser.add_argument_group(
        'multi-seed protocol',
        'train every model once per seed and data variant, keep a result '
        'file per run, skip runs whose result exists for the same config '
        'and model code, and tabulate mean +- std')
    protocol.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        help='seeds (randomness.seed) of the runs (with --variants alone: 0)')
    protocol.add_argument(
        '--variants',
        nargs='+',
        choices=sorted(VARIANTS),
        help='synthetic data variants (with --seeds alone: demo)')
    protocol.add_argument(
        '--data-dir',
        default='data',
        help='folder of the variants\' data sets: synthetic/ (demo) and '
        'synthetic_<variant>/, generated when missing')
    protocol.add_argument(
        '--results-dir',
        default=osp.join('docs', 'results'),
        help='folder of the result files and their README.md table')
    protocol.add_argument(
        '--table-only',
        action='store_true',
        help='train nothing: rebuild the table from the result files')
    protocol.add_argument(
        '--allow-dirty',
        action='store_true',
        help='run although the model code has uncommitted changes (its '
        'results are written but count as stale)')
    args = parser.parse_args(argv)
    args.protocol = bool(args.seeds or args.variants or args.table_only)
    if args.protocol:
        clashes = [
            flag for flag, value in (('--checkpoints', args.checkpoints),
                                     ('--eval-only', args.eval_only),
                                     ('--data-root', args.data_root),
                                     ('--seed', args.seed is not None))
            if value
        ]
        if clashes:
            parser.error(f'{clashes} do not go with --seeds/--variants/'
                         '--table-only: the protocol trains every run and '
                         'takes its data from --data-dir')
        args.seeds = args.seeds or [0]
        args.variants = args.variants or ['demo']
        for name, values in (('seeds', args.seeds),
                             ('variants', args.variants)):
            if len(set(values)) != len(values):
                parser.error(f'--{name} repeats a value: {values}')
        if min(args.seeds) < 0:
            parser.error(f'--seeds must be >= 0, got {args.seeds}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    for name in ('max_iters', 'threads', 'num_images', 'step_iters',
                 'flops_images'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    for name in ('num_warmup', 'step_warmup'):
        if getattr(args, name) < 0:
            parser.error(f'--{name.replace("_", "-")} must be >= 0')
    return args


def ablation_configs(config: str) -> List[tuple]:
    """The Tab. 2 ablation configs of the PEP config ``config``.

    Found by file name: ``pep-<row>_<setting>.py`` next to
    ``pep_<setting>.py``, as in configs/pep/.

    Returns:
        list[tuple]: ``(row, path)`` for every row of :data:`ABLATIONS`.

    Raises:
        ValueError: If the file is not named ``pep_<setting>.py`` or an
            ablation config is missing.
    """
    folder, name = osp.split(config)
    if not name.startswith('pep_'):
        raise ValueError(f'--ablations: {config} is not named '
                         'pep_<setting>.py, so its ablation configs '
                         'pep-<row>_<setting>.py cannot be found')
    paths = [(row, osp.join(folder, f'pep-{row}_{name[len("pep_"):]}'))
             for row in ABLATIONS]
    missing = [path for _, path in paths if not osp.isfile(path)]
    if missing:
        raise ValueError(f'--ablations: no ablation config {missing} for '
                         f'{config}')
    return paths


def build_specs(args) -> List[ModelSpec]:
    """The models to compare, in table order, with their checkpoints."""
    if args.configs:
        bases = []
        for item in args.configs:
            name, sep, path = item.partition('=')
            if not sep:
                path = item
                name = osp.splitext(osp.basename(item))[0]
            bases.append(ModelSpec(name, path))
    else:
        bases = [ModelSpec(n, osp.join(ROOT, p)) for n, p in DEFAULT_CONFIGS]

    specs = []
    for spec in bases:
        specs.append(spec)
        if (args.ablations and args.configs
                and Config.fromfile(spec.config).model.type == 'PEP'):
            specs += [
                ModelSpec(f'{spec.name}-{row}', path)
                for row, path in ablation_configs(spec.config)
            ]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'model names must be unique, got {names}')

    named = [c for c in args.checkpoints if '=' in c]
    if named and len(named) != len(args.checkpoints):
        raise ValueError('--checkpoints: give all as NAME=PATH or all as '
                         'plain paths')
    if named:
        checkpoints = dict(c.split('=', 1) for c in named)
        unknown = set(checkpoints) - set(names)
        if unknown:
            raise ValueError(f'--checkpoints for unknown models {unknown}; '
                             f'the models are {names}')
    elif args.checkpoints:
        if len(args.checkpoints) != len(specs):
            raise ValueError(
                f'--checkpoints: {len(args.checkpoints)} paths for '
                f'{len(specs)} models {names}; use NAME=PATH for a subset')
        checkpoints = dict(zip(names, args.checkpoints))
    else:
        checkpoints = {}
    specs = [s._replace(checkpoint=checkpoints.get(s.name)) for s in specs]
    if args.eval_only:
        missing = [s.name for s in specs if s.checkpoint is None]
        if missing:
            raise ValueError(f'--eval-only needs a checkpoint for {missing}')
    return specs


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


def fmt(value, scale=1., digits=1) -> str:
    """A number for the table, or ``n/a``."""
    return 'n/a' if value is None else f'{value * scale:.{digits}f}'


COLUMNS = ('Model', 'box AP', 'mask AP', 'Params (M)', 'FLOPs (G)',
           'Latency (ms)', 'FPS', 'Floor (ms)', 'Head (ms)', 'Train step (ms)',
           'Peak mem infer / train (MiB)')


def table_row(r: dict) -> List[str]:
    lat, floor = r['latency'], r['floor_latency']
    step = r['train_step']
    train_mem = r['peak_memory']['train']
    if lat is None:  # a report written before time_models
        lat_cells = ['pending'] * 4
    else:
        lat_cells = [
            f'{lat["median_ms"]:.1f} ({lat["p10_ms"]:.1f}-'
            f'{lat["p90_ms"]:.1f})', f'{lat["fps"]:.1f}',
            f'{floor["median_ms"]:.1f}', f'{r["head_overhead_ms"]:.1f}'
        ]
    return [
        r['name'],
        fmt(r['bbox_mAP'], 100),
        fmt(r['segm_mAP'], 100),
        fmt(r['params'], 1e-6, 2),
        fmt(r['flops'], 1e-9, 2),
        *lat_cells,
        fmt(step and step['median_ms'], digits=0),
        f'{r["peak_memory"]["inference"]["peak_mb"]:.0f} / '
        f'{fmt(train_mem and train_mem["peak_mb"], digits=0)}',
    ]


def markdown(report: dict) -> str:
    """``comparison.md``: settings, the table and the notes."""
    s = report['settings']
    models = report['models']
    train_devices = sorted(
        {r['train_device']
         for r in models if r['train_device']}) or ['none (--eval-only)']
    lines = [
        '# Model comparison', '',
        f'Latency, FLOPs and inference memory on {s["device"]} '
        f'({s["device_name"]}, {s["threads"]} torch threads); training on '
        f'{", ".join(train_devices)}. torch {s["torch"]}, mmdet '
        f'{s["mmdet"]}, mmengine {s["mmengine"]}.', '',
        '- AP: COCO AP (%) of the test split with the config\'s evaluator.',
        f'- Latency: per image at batch 1 from the test loader, '
        f'{s["num_images"]} images after {s["num_warmup"]} warm-up; median '
        f'(10th-90th percentile). FPS = 1000 / mean latency. All models are '
        f'timed round-robin on the same images, so drift of the machine '
        f'affects them alike.',
        '- Floor: data preprocessor + backbone + neck on the same images; '
        'Head = Latency - Floor (medians): head and post-processing.',
        f'- Train step: forward + backward + update of one batch (size in '
        f'comparison.json), median after {s["step_warmup"]} warm-up steps.',
        '- FLOPs: mmengine get_model_complexity_info of the tensor-mode '
        'forward (no post-processing) at the padded test size, as '
        'get_flops.py; one multiply-add counts as one FLOP, and ops it '
        'cannot count (normalisation, interpolation) count as 0.',
        '- Peak memory: increase over the level before the phase (CPU: '
        'resident set of the main process; CUDA: allocated tensors).', '',
        '| ' + ' | '.join(COLUMNS) + ' |',
        '|' + '|'.join([':---'] + ['---:'] * (len(COLUMNS) - 1)) + '|'
    ]
    lines += ['| ' + ' | '.join(table_row(r)) + ' |' for r in models]
    notes = [(r['name'], k, v) for r in models for k, v in r['notes'].items()]
    if notes:
        lines += ['', 'Notes:', '']
        lines += [f'- {name}, {key}: {text}' for name, key, text in notes]
    return '\n'.join(lines) + '\n'


def plot(report: dict, path: str) -> None:
    """``comparison.png``: mask AP against median latency, labelled."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    skipped = []
    for r in report['models']:
        if r['segm_mAP'] is None or r['latency'] is None:
            skipped.append(r['name'])
            continue
        lat = r['latency']
        x, y = lat['median_ms'], r['segm_mAP'] * 100
        ax.plot([r['floor_latency']['median_ms'], x], [y, y],
                ls=':',
                color='grey',
                marker='|')
        ax.errorbar(
            x,
            y,
            xerr=[[x - lat['p10_ms']], [lat['p90_ms'] - x]],
            fmt='o',
            capsize=3)
        ax.annotate(
            r['name'], (x, y),
            textcoords='offset points',
            xytext=(5, 5),
            fontsize=8)
    if skipped:
        ax.text(
            0.01,
            0.01,
            'no mask AP or latency: ' + ', '.join(skipped),
            transform=ax.transAxes,
            fontsize=7)
    settings = report['settings']
    ax.set_xlabel(f'latency per image on {settings["device"]}, batch 1 '
                  '(ms; median, bars 10th-90th percentile)')
    ax.set_ylabel('mask AP (%)')
    ax.set_title(
        'Mask AP vs latency (dotted: from the backbone+neck floor)',
        fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict, work_dir: str) -> dict:
    """Write the three files; returns their paths."""
    paths = {
        ext: osp.join(work_dir, f'comparison.{ext}')
        for ext in ('md', 'json', 'png')
    }
    with open(paths['json'], 'w') as f:
        json.dump(report, f, indent=2)
    with open(paths['md'], 'w') as f:
        f.write(markdown(report))
    plot(report, paths['png'])
    return paths


# --- The multi-seed protocol (--seeds / --variants / --table-only) ---


def variant_data_root(data_dir: str, variant: str) -> str:
    """``<data_dir>/synthetic/`` for ``demo``, else ``synthetic_<variant>/``."""
    folder = 'synthetic' if variant == 'demo' else f'synthetic_{variant}'
    return osp.join(data_dir, folder) + '/'


def ensure_variant_data(data_root: str, variant: str) -> None:
    """Generate the variant's data set (800 train, 100 val, 200 held-out
    test images) unless its three annotation files exist."""
    anns = [
        osp.join(data_root, 'annotations', f'instances_{split}.json')
        for split in ('train', 'val', 'test')
    ]
    if all(osp.isfile(ann) for ann in anns):
        return
    print_log(f'[compare] generating the {variant!r} data set in '
              f'{data_root}: {VARIANTS[variant]}')
    generate_dataset(data_root, **VARIANTS[variant])


def use_crowd_metric(cfg: Config) -> None:
    """Test with ``CrowdCocoMetric`` where the config tests with
    ``CocoMetric`` (same arguments): it adds crowded/isolated AP and
    recall and duplicates to the COCO numbers."""
    evaluators = cfg.get('test_evaluator')
    for evaluator in (evaluators if isinstance(evaluators, list) else
                      [evaluators] if evaluators else []):
        if evaluator.get('type') in ('CocoMetric', 'mmdet.CocoMetric'):
            evaluator.type = 'CrowdCocoMetric'


def protocol_cfg(spec: ModelSpec, args, variant: str, seed: int) -> Config:
    """One run's config: the model's on the variant's data, with the
    command line's changes, ``seed``, CrowdCocoMetric and its own work
    dir ``<work-dir>/<variant>/<name>/seed<seed>``."""
    cfg = Config.fromfile(spec.config)
    set_data_root(cfg, variant_data_root(args.data_dir, variant))
    layout = VARIANTS[variant]
    if 'num_classes' in layout:
        set_classes(cfg, metainfo(layout['num_classes']))
    if 'image_size' in layout:
        set_image_scale(cfg, (layout['image_size'], ) * 2)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.max_iters:
        set_max_iters(cfg, args.max_iters)
    set_seed(cfg, seed)
    use_crowd_metric(cfg)
    cfg.work_dir = osp.join(args.work_dir, variant, spec.name, f'seed{seed}')
    cfg.experiment_name = f'{variant}_{spec.name}_seed{seed}'
    return cfg


def fingerprint(cfg: Config) -> tuple:
    """``(config digest, code commit, code files, training digest)`` of a
    run's config."""
    files = code_files(cfg)
    return (config_digest(cfg), code_commit(files, ROOT), files,
            training_digest(cfg))


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
    holds ``commit`` and ``train_digest`` (see :func:`training_digest`) was
    trained with these weights' config and this model code: by a run that
    stopped before writing its result, or for a config that differs only in
    how it is evaluated (``model.test_cfg``, the test data or metric). It is
    tested, not trained again. A stamp without a training digest (older
    runs) is reused only for the same whole config digest.

    The checkpoint is tested twice: on the config's test split (the
    held-out split of the synthetic sets) and on its val split.

    Returns:
        tuple: The test metrics, the val metrics, the training-step
        summary (None when reused) and the training time in minutes (None
        when reused).
    """
    mkdir_or_exist(cfg.work_dir)
    stamp = osp.join(cfg.work_dir, 'fingerprint.json')
    fingerprint_now = dict(config_digest=digest, code_commit=commit)
    if train_digest is not None:
        fingerprint_now['training_digest'] = train_digest
    checkpoint = final_checkpoint(cfg)
    reuse = osp.isfile(checkpoint) and osp.isfile(stamp)
    if reuse:
        with open(stamp) as f:
            old = json.load(f)
        same = ('training_digest', train_digest) if old.get(
            'training_digest') else ('config_digest', digest)
        reuse = (old.get('code_commit') == commit
                 and old.get(same[0]) == same[1])
    if reuse:
        print_log(f'[compare] testing the finished {checkpoint}')
        cfg_test = without_validation(cfg)
        cfg_test.load_from = checkpoint
        metrics = Runner.from_cfg(cfg_test).test()
        return (metrics, Runner.from_cfg(on_val_split(cfg, checkpoint)).test(),
                None, None)
    with open(stamp, 'w') as f:
        json.dump(fingerprint_now, f)
    start = time.perf_counter()
    runner, timer, _ = train(cfg)
    minutes = (time.perf_counter() - start) / 60
    try:
        step = timer.summary(step_warmup)
    except ValueError:  # fewer iterations than the warm-up
        step = None
    metrics = runner.test()
    val_metrics = Runner.from_cfg(on_val_split(cfg, checkpoint)).test()
    return metrics, val_metrics, step, minutes


def table_specs(specs: List[ModelSpec], results: List[dict]) -> list:
    """The given models, then those of the result files not among them
    (with the config their files name, when it still exists)."""
    names = {spec.name for spec in specs}
    extra = {}
    for r in results:
        config = osp.join(ROOT, r['config'])
        if r['name'] not in names and osp.isfile(config):
            extra.setdefault(r['name'], ModelSpec(r['name'], config))
    return list(specs) + list(extra.values())


def write_results_table(specs: List[ModelSpec],
                        args,
                        fingerprints: dict,
                        make_cfg=protocol_cfg,
                        known_variants=tuple(VARIANTS),
                        title: str = 'Results over seeds and data variants',
                        **table) -> str:
    """Rebuild ``<results-dir>/README.md`` from the result files.

    A file is current when its config digest and code commit equal those of
    the model's config now (computed here with ``make_cfg``, as
    :func:`protocol_cfg`, for models not yet seen). The command line's
    ``--cfg-options`` apply to the models it names; a model of the folder
    that it does not name is judged with the options its own run recorded.
    Runs of a variant not in ``known_variants`` are stale; ``table`` goes
    to :func:`results_markdown` (its columns, note and tool).
    """
    results = load_results(args.results_dir)
    named = {spec.name for spec in specs}
    specs = table_specs(specs, results)
    variants = [
        v for v in known_variants
        if v in args.variants or any(r['variant'] == v for r in results)
    ]
    by_name = {spec.name: spec for spec in specs}
    current, stale = [], []
    schedule = {}  # key -> the iterations this build trains (stale keys)
    other_iters, built_iters = set(), set()
    for r in results:
        spec = by_name.get(r['name'])
        if spec is None or r['variant'] not in known_variants:
            stale.append(r)
            continue
        key = (r['name'], r['variant'])
        run_args = args
        if r['name'] not in named:
            options = r.get('cfg_options')
            run_args = argparse.Namespace(**{**vars(args),
                                             'cfg_options': options})
            key += (json.dumps(options, sort_keys=True), )
        cfg = None
        if key not in fingerprints:
            cfg = make_cfg(spec, run_args, r['variant'], 0)
            fingerprints[key] = fingerprint(cfg)
        if is_current(r, fingerprints[key][:2]):
            current.append(r)
            continue
        stale.append(r)
        if key not in schedule:  # only stale runs need it
            if cfg is None:
                cfg = make_cfg(spec, run_args, r['variant'], 0)
            schedule[key] = cfg.get('train_cfg', {}).get('max_iters')
        if r.get('max_iters') not in (None, schedule[key]):
            other_iters.add(r['max_iters'])
            built_iters.add(schedule[key])
    text = results_markdown(
        current, stale, [s.name for s in specs
                         if any(r['name'] == s.name for r in current)],
        variants, title, **table)
    if other_iters:
        # The schedule is part of the config digest: a table rebuilt
        # without the --max-iters its runs were trained with judges them
        # all stale (and may come out empty).
        trained = sorted(other_iters)
        built = sorted(i for i in built_iters if i)
        hint = (f'Stale runs trained for {trained} iterations, this table '
                f'for {built}: rebuild with --max-iters '
                f'{trained[0]} to judge them.')
        print_log(f'[compare] {hint}', level=logging.WARNING)
        text += f'\n{hint}\n'
    mkdir_or_exist(args.results_dir)
    path = osp.join(args.results_dir, 'README.md')
    with open(path, 'w') as f:
        f.write(text)
    return text


def run_protocol(specs: List[ModelSpec],
                 args,
                 make_cfg=protocol_cfg,
                 write_table=write_results_table) -> dict:
    """Train and test every model per seed and variant, skipping the runs
    whose result file is current; rebuild the table after each run.

    ``make_cfg(spec, args, variant, seed)`` gives a run's config
    (:func:`protocol_cfg`) and ``write_table(specs, args, fingerprints)``
    rebuilds the table (:func:`write_results_table`): ``compare_vis.py``
    passes its own for the video models. The data must exist.

    Returns:
        dict: ``ran``, ``skipped`` and ``pending`` (``--table-only``) as
        lists of ``(variant, name, seed)``, and the ``table`` text.
    """
    fingerprints = {}
    done = dict(ran=[], skipped=[], pending=[])
    for seed in args.seeds:
        for variant in args.variants:
            for spec in specs:
                cfg = make_cfg(spec, args, variant, seed)
                key = (spec.name, variant)
                if key not in fingerprints:
                    fingerprints[key] = fingerprint(cfg)
                digest, commit, files, train_digest = fingerprints[key]
                path = result_path(args.results_dir, variant, spec.name,
                                   seed)
                run = (variant, spec.name, seed)
                if osp.isfile(path) and is_current(
                        read_result(path), (digest, commit)):
                    print_log(f'[compare] {path} is current: skipped')
                    done['skipped'].append(run)
                    continue
                if args.table_only:
                    done['pending'].append(run)
                    continue
                if commit.endswith('+dirty') and not args.allow_dirty:
                    raise RuntimeError(
                        f'{spec.name}: uncommitted changes in {files}: '
                        'commit them first (or pass --allow-dirty; the '
                        'result then counts as stale)')
                print_log(f'[compare] {spec.name}, {variant}, seed {seed}: '
                          f'training {spec.config} in {cfg.work_dir}')
                metrics, val_metrics, step, minutes = train_and_test(
                    cfg, digest, commit, args.step_warmup, train_digest)
                config = osp.relpath(osp.abspath(spec.config), ROOT)
                write_result(
                    path,
                    dict(
                        name=spec.name,
                        config=config,
                        config_digest=digest,
                        training_digest=train_digest,
                        code_commit=commit,
                        code_files=files,
                        cfg_options=args.cfg_options or None,
                        variant=variant,
                        seed=seed,
                        max_iters=cfg.train_cfg.get('max_iters'),
                        split='test',
                        metrics={k: float(v)
                                 for k, v in metrics.items()},
                        val_metrics={k: float(v)
                                     for k, v in val_metrics.items()},
                        train_step_ms=step and step['median_ms'],
                        train_minutes=minutes,
                        machine=f'{platform.machine()}, '
                        f'{torch.get_num_threads()} threads',
                        torch=torch.__version__,
                        mmdet=mmdet.__version__,
                        date=time.strftime('%Y-%m-%d')))
                print_log(f'[compare] wrote {path}')
                done['ran'].append(run)
                write_table(specs, args, fingerprints)
    done['table'] = write_table(specs, args, fingerprints)
    return done


def main(argv=None):
    args = parse_args(argv)
    specs = build_specs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.protocol:
        if not args.table_only:
            for variant in args.variants:
                ensure_variant_data(
                    variant_data_root(args.data_dir, variant), variant)
        done = run_protocol(specs, args)
        print(done['table'])
        print(f'[compare] {len(done["ran"])} run(s) done, '
              f'{len(done["skipped"])} current, {len(done["pending"])} '
              f'to do; table: {osp.join(args.results_dir, "README.md")}')
        return done
    device = torch.device(args.device)
    mkdir_or_exist(args.work_dir)
    report = dict(
        settings=dict(
            arguments=vars(args),
            device=str(device),
            device_name=device_name(device),
            threads=torch.get_num_threads(),
            num_images=args.num_images,
            num_warmup=args.num_warmup,
            step_warmup=args.step_warmup,
            torch=torch.__version__,
            mmdet=mmdet.__version__,
            mmengine=mmengine.__version__),
        models=[])
    print_log(f'[compare] models: {[spec.name for spec in specs]}')
    # One model at a time: each trains with the whole machine. The report
    # is rewritten after each, so hours of training are never lost.
    models, cfgs = [], []
    for spec in specs:
        entry, model, cfg = compare_model(spec, args, device)
        report['models'].append(entry)
        models.append(model)
        cfgs.append(cfg)
        write_report(report, args.work_dir)
    time_models(report['models'], models, cfgs, args, device)
    paths = write_report(report, args.work_dir)
    print(markdown(report))
    for path in paths.values():
        print(f'[compare] wrote {path}')
    return report


if __name__ == '__main__':
    main()
