"""The video protocol of ``compare_vis.py``: its models, one run's config,
and its table, which ``build_tables.py`` also writes into ``README.md`` and
``docs/results_vis/README.md``.

A result file ``docs/results_vis/clips/<model>/seed<S>.json`` counts while
its config digest and code commit equal those of :func:`vis_cfg` now, as
``compare.py``'s image runs do (:func:`.protocol.judge_results`).
"""
import argparse
import os.path as osp

from mmengine.config import Config

from .config_rewrites import set_data_root, set_max_iters, set_seed
from .protocol import current_names, judge_results, judged_markdown
from .results import VIS_TABLE_METRICS, summarize
from .results_table import cell, header, markdown_row
from .specs import default_specs

RESULTS_DIR = 'docs/results_vis'
DEFAULT_CONFIGS = (
    ('SipMask-VIS',
     'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py'),
    ('MaskTrack-RCNN',
     'configs/masktrack_rcnn/masktrack-rcnn_r18_fpn_1200it_synthetic-vis.py'),
)
# The name of a model's run on its image initialisation (--image-weights).
IMAGE_WEIGHTS = '-image-weights'
# The one data set: the embedded synthetic clips (the result files keep a
# variant level, as compare.py's, for more sets later).
VARIANT = 'clips'
TITLE = 'Video instance segmentation over seeds'
TOOL = 'compare_vis.py --seeds ...'
NOTE = ('YouTube-VIS AP (%, of `YouTubeVISIDSwitchMetric`: mmdet\'s '
        '`YouTubeVISMetric` on the local ground truth) on the synthetic '
        'held-out test clips (runs before the test split existed: the val '
        'clips); ID switches: identity switches of all those clips '
        '(CLEAR-MOT: a GT track matched at mask IoU >= 0.5 to a '
        'different predicted track than at its last match); frame AP: '
        'COCO mask AP with every frame scored as an image. '
        f'`<model>{IMAGE_WEIGHTS}` (`--image-weights`, 0 iterations): the '
        'video config on its image initialisation, untrained track head; '
        'its frame AP is the image model\'s on the same frames; test '
        'ms/frame: `TestTimeHook`, the model step with tracking, one '
        'clip per iteration, threads as the run\'s; train ms/step: the '
        'median training step after the first 5.')


def vis_args(root: str) -> argparse.Namespace:
    """``compare_vis.py``'s defaults for the protocol on ``root``'s result
    files (what the tables are judged with)."""
    return argparse.Namespace(
        results_dir=osp.join(root, RESULTS_DIR), variants=[VARIANT],
        data_root='data/synthetic_vis/', cfg_options=None, max_iters=None,
        work_dir='work_dirs/comparison_vis')


def vis_cfg(spec, args, variant: str, seed: int) -> Config:
    """One run's config: the model's on ``--data-root``'s clips, with the
    command line's changes and ``seed``, timing its test
    (``TestTimeHook``: ``test_ms_per_frame``), in its own work dir
    ``<work-dir>/<variant>/<name>/seed<seed>``."""
    cfg = Config.fromfile(spec.config)
    set_data_root(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.max_iters:
        set_max_iters(cfg, args.max_iters)
    set_seed(cfg, seed)
    # test_ms_per_frame in the test metrics (mmdet_pep.engine.hooks).
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='TestTimeHook')
    ]
    cfg.work_dir = osp.join(args.work_dir, variant, spec.name, f'seed{seed}')
    cfg.experiment_name = f'{variant}_{spec.name}_seed{seed}'
    return cfg


def judge(root: str, fingerprints: dict) -> dict:
    """The video result files of ``root``, current or stale
    (:func:`.protocol.judge_results` with :func:`vis_cfg`)."""
    return judge_results(default_specs(DEFAULT_CONFIGS), vis_args(root),
                         fingerprints, make_cfg=vis_cfg,
                         known_variants=(VARIANT, ))


def page(judged: dict) -> str:
    """The text of ``docs/results_vis/README.md`` (what ``compare_vis.py``
    writes there)."""
    return judged_markdown(judged, TITLE, metrics=VIS_TABLE_METRICS,
                           note=NOTE, tool=TOOL)


def readme_block(judged: dict) -> str:
    """The README's video table: mean ± std over the seeds of every model
    with current runs on the clips."""
    names = current_names(judged)
    if not names:
        return ('No current video runs yet '
                f'([{RESULTS_DIR}/]({RESULTS_DIR}/README.md)).\n')
    summary = summarize(judged['current'], names, [VARIANT],
                        VIS_TABLE_METRICS)
    lines = header(['Model', 'runs'] + [t for _, t, _ in VIS_TABLE_METRICS],
                   1)
    for name in names:
        row = summary[name][VARIANT]
        lines.append(markdown_row(
            [name, str(max(v[2] for v in row.values()))] +
            [cell(row.get(key), scale)
             for key, _, scale in VIS_TABLE_METRICS]))
    return '\n'.join(lines) + '\n'
