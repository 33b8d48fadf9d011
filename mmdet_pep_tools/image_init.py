"""Video models started from image weights, as SipMask-VIS' official
recipe starts from the COCO image SipMask (and mmdet's MaskTrack R-CNN
from a COCO Mask R-CNN).

A video config names the image model it starts from in ``image_init``
and the converted weights in ``load_from``::

    image_init = dict(
        name='SipMask',  # the model's name in compare.py's protocol
        config='configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py',
        seed=0)
    load_from = 'checkpoints/sipmask_r18_fpn_1200it_synthetic_seed0_vis.pth'

:func:`ensure_image_init` makes a missing ``load_from``: the image config
trained by compare.py's protocol (:func:`~.runs.run_one`: its own work
dir ``<work-dir>/demo/<name>/seed<seed>`` and result file, a finished
training there reused), then its final checkpoint converted to the video
model's names (``detector.*``; the track head is absent and starts from
scratch) by ``tools/model_converters/sipmask_official_to_mmdet.py
--from-mmdet-pep-image``. ``compare_vis.py`` runs it before training a
video model, ``compare_vis.py CONFIG --init-only`` alone
(:func:`init_command`); ``tools/train.py`` stops naming the file and that
command while it is missing (:func:`check_image_init`).
"""
import argparse
import importlib.util
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from . import ROOT
from .protocol import DATA_DIR, fingerprint, fingerprint_cfg, protocol_cfg
from .runs import run_one
from .results import is_current, read_result, result_path
from .specs import ModelSpec
from .training import final_checkpoint
from .variant_data import ensure_variant_data, variant_data_root

#: The image set's variant whose images are drawn as the synthetic clips'
#: frames (the same backgrounds, shapes and 3 classes, 128 px).
VARIANT = 'demo'
#: compare.py's protocol defaults: where the image runs' data, work dirs
#: and result files live.
WORK_DIR = 'work_dirs/comparison'
RESULTS_DIR = osp.join('docs', 'results')
CONVERTER = 'tools/model_converters/sipmask_official_to_mmdet.py'


def image_init_of(cfg: Config) -> Optional[dict]:
    """The ``image_init`` of a config whose ``load_from`` it makes, else
    None (no ``image_init``, ``load_from`` set to None, or a resumed run,
    whose ``load_from`` is its own checkpoint)."""
    init = cfg.get('image_init')
    if not init or not cfg.get('load_from') or cfg.get('resume'):
        return None
    missing = {'name', 'config', 'seed'} - set(init)
    if missing:
        raise ValueError(f'image_init lacks {sorted(missing)}: it needs '
                         'name, config and seed')
    return init


def init_command(config: str, load_from: Optional[str] = None) -> str:
    """The command that makes a video config's ``load_from``
    (``load_from`` other than the config file's goes in as an option)."""
    path = osp.relpath(osp.abspath(config), ROOT)
    if path.startswith('..'):
        path = config
    command = f'python tools/analysis_tools/compare_vis.py {path} --init-only'
    if load_from and load_from != Config.fromfile(config).get('load_from'):
        command += f' --cfg-options load_from={load_from}'
    return command


def check_image_init(cfg: Config, config: str) -> None:
    """Fail naming the file and :func:`init_command` when ``cfg`` loads
    the converted image weights and they are missing.

    Raises:
        FileNotFoundError: If ``cfg.load_from`` is made from
            ``image_init`` and does not exist.
    """
    init = image_init_of(cfg)
    if init is None or osp.isfile(cfg.load_from):
        return
    raise FileNotFoundError(
        f'load_from {cfg.load_from} does not exist: the image model '
        f'{init["config"]} (seed {init["seed"]}) in this video model\'s '
        'key names, which it starts from. Make it with\n'
        f'    {init_command(config, cfg.load_from)}\n'
        '(trains the image config, or reuses its finished training, and '
        f'converts it with {CONVERTER} --from-mmdet-pep-image), or train '
        'from scratch with --cfg-options load_from=None.')


def image_args(data_dir: str = DATA_DIR,
               work_dir: str = WORK_DIR,
               results_dir: str = RESULTS_DIR,
               allow_dirty: bool = False,
               step_warmup: int = 5) -> argparse.Namespace:
    """The protocol arguments of the image runs: compare.py's, on the
    image set's :data:`VARIANT`, the config's own schedule, no options."""
    return argparse.Namespace(
        data_dir=data_dir,
        work_dir=work_dir,
        results_dir=results_dir,
        allow_dirty=allow_dirty,
        step_warmup=step_warmup,
        cfg_options=None,
        max_iters=None,
        table_only=False,
        variants=[VARIANT])


def train_image_model(init: dict, args: argparse.Namespace) -> dict:
    """Train ``init``'s image config by the protocol (or reuse its
    finished training).

    The run's result file is written unless it is current already (the
    checkpoint is then made again for a result that stays as it is).

    Returns:
        dict: The final ``checkpoint`` and the run's ``config_digest`` and
        ``code_commit``.
    """
    spec = ModelSpec(init['name'], osp.join(ROOT, init['config']))
    ensure_variant_data(variant_data_root(args.data_dir, VARIANT), VARIANT)
    cfg = protocol_cfg(spec, args, VARIANT, init['seed'])
    found = fingerprint(
        fingerprint_cfg(spec, args, VARIANT, init['seed'], cfg=cfg))
    path = result_path(args.results_dir, VARIANT, spec.name, init['seed'])
    current = osp.isfile(path) and is_current(read_result(path), found[:2])
    run_one(spec, args, VARIANT, init['seed'], cfg, found,
            write=not current)
    return dict(checkpoint=final_checkpoint(cfg), config_digest=found[0],
                code_commit=found[1])


def _converter():
    """``tools/model_converters/sipmask_official_to_mmdet.py`` as a
    module (``tools/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        'sipmask_official_to_mmdet', osp.join(ROOT, CONVERTER))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_image_init(cfg: Config,
                      args: Optional[argparse.Namespace] = None
                      ) -> Optional[str]:
    """Make ``cfg.load_from`` from ``cfg.image_init`` if it is missing.

    Args:
        cfg (Config): A video config (with the run's options).
        args (Namespace, optional): :func:`image_args`; its defaults if
            not given.

    Returns:
        str or None: The file made, None if there was nothing to make.
    """
    init = image_init_of(cfg)
    if init is None or osp.isfile(cfg.load_from):
        return None
    print_log(f'[image_init] {cfg.load_from} is missing: making it from '
              f'{init["config"]}, seed {init["seed"]}')
    run = train_image_model(init, args or image_args())
    report = _converter().convert(
        run['checkpoint'],
        cfg.load_from,
        config=cfg,
        from_image=True,
        extra_meta=dict(image_init=dict(init, **run)))
    print_log(f'[image_init] wrote {cfg.load_from}: {report["written"]} '
              f'keys; the track head ({len(report["absent"])} keys) starts '
              'from scratch')
    return cfg.load_from
