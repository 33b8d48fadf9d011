"""Compare PEP, its Tab. 2 rows, SOLOv2, CondInst, EmbedMask, SipMask and
SpatialEmbeddings on one data set (the code is in ``mmdet_pep_tools``).

The single comparison (the default) trains every model, one after another,
with mmengine's Runner (or loads the checkpoint given for it), evaluates
bbox and segm AP with the config's test evaluator and measures inference
latency (batch 1, all models round-robin, median and 10th/90th
percentiles), the backbone+neck floor, training-step time, parameters,
FLOPs and peak memory (``mmdet_pep_tools.comparison``). It writes
``comparison.md``, ``.json`` and ``.png`` into ``--work-dir`` after every
model; ``--latency-dir`` also keeps each model's latency as a result file
(``<dir>/<model>.json``, read by ``build_tables.py``).

With ``--seeds`` and/or ``--variants`` it runs the multi-seed protocol
instead (``mmdet_pep_tools.protocol``): every model once per seed on every
data variant (generated under ``--data-dir`` when missing), tested on the
held-out test split (``metrics``) and on val (``val_metrics``). Each run
writes ``<results-dir>/<variant>/<model>/seed<S>.json``; a run whose file
is current (same config digest and model-code commit) is skipped, so the
protocol resumes and accumulates across sessions. ``<results-dir>/README.md``
is rebuilt after every run; ``--table-only`` rebuilds it without training.
``tools/analysis_tools/build_tables.py`` then rebuilds the README tables.

Latency and inference memory are measured on ``--device``; training runs
where mmengine's Runner puts the model.

Examples::

    # The default models, each for its schedule
    python tools/analysis_tools/compare.py --work-dir work_dirs/comparison
    # A PEP config and its Tab. 2 configs (found by file name)
    python tools/analysis_tools/compare.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py --ablations
    # Three seeds on both data variants, resumable (docs/results/)
    python tools/analysis_tools/compare.py --seeds 0 1 2 \\
        --variants demo dense
    # Two models on a shortened schedule, elsewhere
    python tools/analysis_tools/compare.py \\
        PEP=configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        CondInst=configs/condinst/condinst_r18_fpn_1200it_synthetic.py \\
        --seeds 0 1 2 --variants demo dense --max-iters 400 \\
        --results-dir work_dirs/screen_400it
    # Two given checkpoints, no training; keep the latencies
    python tools/analysis_tools/compare.py \\
        PEP=configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        SOLOv2=configs/solov2/solov2_r18_fpn_1200it_synthetic.py \\
        --checkpoints PEP=pep.pth SOLOv2=solov2.pth --eval-only \\
        --latency-dir docs/results/latency
"""
import argparse
import os.path as osp

import mmengine
import torch
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

import mmdet
from mmdet_pep.datasets.synthetic import VARIANTS
from mmdet_pep_tools.benchmark import device_name
from mmdet_pep_tools.comparison import (compare_model, time_models,
                                        write_latencies)
from mmdet_pep_tools.protocol import DATA_DIR
from mmdet_pep_tools.runs import run_protocol
from mmdet_pep_tools.report import markdown, write_report
from mmdet_pep_tools.specs import build_specs
from mmdet_pep_tools.variant_data import (ensure_variant_data,
                                          variant_data_root)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train, evaluate and time instance segmentation models '
        'side by side')
    parser.add_argument(
        'configs',
        nargs='*',
        help='config files, each as PATH or NAME=PATH (NAME labels the row '
        'and names its work dir; default: the file name). Default: PEP, its '
        'three Tab. 2 rows, SOLOv2, CondInst, EmbedMask, SipMask and '
        'SpatialEmbeddings on the synthetic set')
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
        '--latency-dir',
        help='also write each model\'s latency to <DIR>/<model>.json (for '
        'build_tables.py; e.g. docs/results/latency)')
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
        default=DATA_DIR,
        help='folder of the variants\' data sets: synthetic/ (demo) and '
        'synthetic_<variant>/, generated when missing. Where they lie is '
        'not part of a run\'s fingerprint: runs made with another folder '
        'are current for tables built with the default')
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
                                     ('--seed', args.seed is not None),
                                     ('--latency-dir', args.latency_dir))
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


def main(argv=None):
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
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
    if args.latency_dir:
        paths.update(
            (f'latency {i}', path) for i, path in enumerate(
                write_latencies(report, cfgs, args.latency_dir)))
    print(markdown(report))
    for path in paths.values():
        print(f'[compare] wrote {path}')
    return report


if __name__ == '__main__':
    main()
