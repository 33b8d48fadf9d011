"""Compare video instance segmentation models on the synthetic clips over
seeds: SipMask-VIS against mmdet's MaskTrack R-CNN by default.

The video counterpart of ``compare.py --seeds``, with its machinery
(``mmdet_pep_tools.protocol``): every model is trained once per seed with
mmengine's Runner on the embedded synthetic video set
(``mmdet_pep.datasets.synthetic_video``, generated in ``--data-root`` when
missing) and tested with its config's evaluator
(``YouTubeVISIDSwitchMetric``: YouTube-VIS AP and identity switches). Each
finished run writes ``<results-dir>/clips/<model>/seed<S>.json`` (config,
its digest, the commit of the model code behind it, seed, every metric);
a run whose file exists for the same config digest and code commit is
skipped, so the comparison resumes and accumulates across sessions when the
files are committed. After every run, and with ``--table-only`` without
training, ``<results-dir>/README.md`` is rebuilt from the files: mean ±
std over seeds per model, and every run.

A model whose config starts from image weights (``image_init`` and
``load_from``: both synthetic configs) gets them first when the file is
missing (``mmdet_pep_tools.image_init``): its image config trained by
compare.py's protocol (seed ``image_init.seed`` on the image set, in
``--image-work-dir`` with its result file in ``--image-results-dir``: a
finished training there is reused), then converted to the video model's
names. ``--init-only`` does only that. ``--image-weights`` also tests each such
config on its image initialisation as it is (no video training, the track
head at its initial weights): the run ``<model>-image-weights``, whose
frame mask AP (every frame scored as an image) is the image model's on the
clips' frames, the figure a video model's frame AP is compared with; its
VIS AP is what tracking gets without training.

Examples::

    # SipMask-VIS and MaskTrack R-CNN, three seeds (docs/results_vis/)
    python tools/analysis_tools/compare_vis.py --seeds 0 1 2
    # One model on a shortened schedule, elsewhere
    python tools/analysis_tools/compare_vis.py \\
        SipMask-VIS=configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py \\
        --max-iters 300 --results-dir work_dirs/vis_screen
    # Rebuild the table from the result files only
    python tools/analysis_tools/compare_vis.py --table-only
    # SipMask-VIS and its image model on the same test frames
    python tools/analysis_tools/compare_vis.py \\
        SipMask-VIS=configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py \\
        --seeds 0 1 2 --image-weights
    # Only the image initialisation (load_from) of SipMask-VIS
    python tools/analysis_tools/compare_vis.py \\
        configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py \\
        --init-only
"""
import argparse
import os.path as osp
from functools import partial

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmdet_pep.datasets.synthetic_video import ensure_vis_dataset
from mmdet_pep_tools import ROOT
from mmdet_pep_tools import image_init
from mmdet_pep_tools.protocol import fingerprint, write_results_table
from mmdet_pep_tools.runs import check_clean, result_record, run_protocol
from mmdet_pep_tools.results import (VIS_TABLE_METRICS, is_current,
                                     read_result, result_path, write_result)
from mmdet_pep_tools.specs import ModelSpec, build_specs
from mmdet_pep_tools.training import on_val_split, without_validation
from mmdet_pep_tools.vis_protocol import (DEFAULT_CONFIGS, IMAGE_WEIGHTS, NOTE,
                                          RESULTS_DIR, TITLE, TOOL, VARIANT,
                                          vis_cfg)

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'models', nargs='*',
        help='NAME=CONFIG or CONFIG (named after the file); default: '
        f'{", ".join(name for name, _ in DEFAULT_CONFIGS)}')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--data-root', default='data/synthetic_vis/')
    parser.add_argument('--work-dir', default='work_dirs/comparison_vis')
    parser.add_argument('--results-dir', default=RESULTS_DIR)
    parser.add_argument(
        '--max-iters', type=int,
        help="train this many iterations instead of the config's (the LR "
        'schedule compressed in proportion)')
    parser.add_argument(
        '--table-only', action='store_true',
        help='rebuild the table from the result files, train nothing')
    parser.add_argument(
        '--image-weights', action='store_true',
        help='also test each model that starts from image weights on them '
        f'as they are: the run <model>{IMAGE_WEIGHTS} (no video training)')
    parser.add_argument(
        '--init-only', action='store_true',
        help="make the models' missing image initialisations (load_from), "
        'train no video model')
    parser.add_argument(
        '--image-data-dir', default=image_init.DATA_DIR,
        help="the image runs' data (compare.py's --data-dir)")
    parser.add_argument(
        '--image-work-dir', default=image_init.WORK_DIR,
        help="the image runs' work dirs (compare.py's --work-dir)")
    parser.add_argument(
        '--image-results-dir', default=image_init.RESULTS_DIR,
        help="the image runs' result files (compare.py's --results-dir)")
    parser.add_argument(
        '--allow-dirty', action='store_true',
        help='run although the model code has uncommitted changes (its '
        'results are written but count as stale)')
    parser.add_argument('--step-warmup', type=int, default=5,
                        help='training steps left out of the step time')
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='KEY=VALUE overrides of every config, as tools/train.py')
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a value: {args.seeds}')
    if min(args.seeds) < 0:
        parser.error(f'--seeds must be >= 0, got {args.seeds}')
    if args.init_only and args.table_only:
        parser.error('--init-only and --table-only exclude each other')
    for name in ('max_iters', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    args.variants = [VARIANT]
    # What build_specs reads.
    args.configs = args.models or [
        f'{name}={osp.join(ROOT, config)}' for name, config in DEFAULT_CONFIGS
    ]
    args.ablations, args.checkpoints, args.eval_only = False, [], False
    return args


def test_image_weights(spec, args, image_args) -> list:
    """``--image-weights``: test ``spec``'s video config on its image
    initialisation as it is (the detector the video training starts from;
    the track head at the initial weights of the image run's seed), and
    write the result as the run ``<name>-image-weights`` of that seed (0
    iterations). A current result file is kept.

    Returns:
        list: ``[(variant, name, seed, ran)]``, empty for a model that
        starts from no image weights.
    """
    init = image_init.image_init_of(vis_cfg(spec, args, VARIANT, 0))
    if init is None:
        return []
    spec = ModelSpec(spec.name + IMAGE_WEIGHTS, spec.config)
    seed = init['seed']
    cfg = vis_cfg(spec, args, VARIANT, seed)
    fingerprint_ = fingerprint(cfg)
    path = result_path(args.results_dir, VARIANT, spec.name, seed)
    if osp.isfile(path) and is_current(read_result(path), fingerprint_[:2]):
        print_log(f'[compare_vis] {path} is current: skipped')
        return [(VARIANT, spec.name, seed, False)]
    if args.table_only:
        return [(VARIANT, spec.name, seed, False)]
    check_clean(spec, args, fingerprint_)
    checkpoint = image_init.ensure_image_init(cfg, image_args) \
        or cfg.load_from
    print_log(f'[compare_vis] {spec.name}: testing {checkpoint}')
    metrics = Runner.from_cfg(without_validation(cfg)).test()
    val_metrics = Runner.from_cfg(on_val_split(cfg, checkpoint)).test()
    write_result(
        path,
        result_record(spec, args, VARIANT, seed, cfg, fingerprint_, metrics,
                      val_metrics, max_iters=0))
    print_log(f'[compare_vis] wrote {path}')
    return [(VARIANT, spec.name, seed, True)]


def main(argv=None):
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    specs = build_specs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    image_args = image_init.image_args(
        args.image_data_dir, args.image_work_dir, args.image_results_dir,
        args.allow_dirty, args.step_warmup)
    if args.init_only:
        made = []
        for spec in specs:
            cfg = vis_cfg(spec, args, VARIANT, args.seeds[0])
            made.append(image_init.ensure_image_init(cfg, image_args))
            print(f'[compare_vis] {spec.name}: ' + (
                f'wrote {made[-1]}' if made[-1] else
                f'{cfg.load_from} exists' if image_init.image_init_of(cfg)
                else 'starts from no image model'))
        return dict(made=made)
    if not args.table_only:
        # The defaults of make_synthetic_vis.py.
        ensure_vis_dataset(args.data_root)
    write_table = partial(
        write_results_table,
        make_cfg=vis_cfg,
        known_variants=(VARIANT, ),
        title=TITLE,
        metrics=VIS_TABLE_METRICS,
        note=NOTE,
        tool=TOOL)
    done = run_protocol(
        specs, args, make_cfg=vis_cfg, write_table=write_table,
        prepare=lambda spec, cfg: image_init.ensure_image_init(
            cfg, image_args))
    if args.image_weights:
        done['image_weights'] = [
            run for spec in specs
            for run in test_image_weights(spec, args, image_args)
        ]
        done['table'] = write_table(specs, args, {})
    print(done['table'])
    print(f'[compare_vis] {len(done["ran"])} run(s) done, '
          f'{len(done["skipped"])} current, {len(done["pending"])} to do; '
          f'table: {osp.join(args.results_dir, "README.md")}')
    return done


if __name__ == '__main__':
    main()
