"""Running the protocol of :mod:`.protocol`: one run (train, test, write
its result file) and every run of the models, seeds and variants."""
import os.path as osp
import platform
import time
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

import mmdet
from . import ROOT
from .protocol import (fingerprint, fingerprint_cfg, protocol_cfg,
                       write_results_table)
from .results import is_current, read_result, result_path, write_result
from .specs import ModelSpec
from .training import train_and_test


def result_record(spec: ModelSpec,
                  args,
                  variant: str,
                  seed: int,
                  cfg: Config,
                  fingerprint_: tuple,
                  metrics: dict,
                  val_metrics: dict,
                  step: Optional[dict] = None,
                  minutes: Optional[float] = None,
                  max_iters: Optional[int] = None) -> dict:
    """One run's result file: what ran (config, its digests, the model
    code's commit and files, ``--cfg-options``, variant, seed, iterations:
    ``max_iters``, else the config's), the test and val metrics, the
    training's cost (``step``'s median ms, ``minutes``; None when nothing
    was trained) and the machine."""
    digest, commit, files, train_digest = fingerprint_
    return dict(
        name=spec.name,
        config=osp.relpath(osp.abspath(spec.config), ROOT),
        config_digest=digest,
        training_digest=train_digest,
        code_commit=commit,
        code_files=files,
        cfg_options=args.cfg_options or None,
        variant=variant,
        seed=seed,
        max_iters=cfg.train_cfg.get('max_iters')
        if max_iters is None else max_iters,
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
        date=time.strftime('%Y-%m-%d'))


def check_clean(spec: ModelSpec, args, fingerprint_: tuple) -> None:
    """Raise ``RuntimeError`` when the model code behind ``fingerprint_``
    has uncommitted changes and ``args.allow_dirty`` is not set."""
    commit, files = fingerprint_[1:3]
    if commit.endswith('+dirty') and not args.allow_dirty:
        raise RuntimeError(
            f'{spec.name}: uncommitted changes in {files}: '
            'commit them first (or pass --allow-dirty; the '
            'result then counts as stale)')


def run_one(spec: ModelSpec,
            args,
            variant: str,
            seed: int,
            cfg: Config,
            fingerprint_: tuple,
            prepare=None,
            write: bool = True) -> dict:
    """Train and test one run (:func:`train_and_test`: a finished
    training of the same weights in its work dir is tested, not repeated)
    and write its result file.

    Args:
        spec (ModelSpec): The model.
        args: The protocol's arguments (``results_dir``, ``allow_dirty``,
            ``step_warmup``, ``cfg_options``).
        variant (str): The data variant.
        seed (int): The run's seed.
        cfg (Config): The run's config (``make_cfg``'s).
        fingerprint_ (tuple): :func:`fingerprint` of ``cfg``.
        prepare (callable, optional): ``prepare(spec, cfg)``, called after
            the code check and before training (``compare_vis.py`` makes
            the model's image initialisation there).
        write (bool): Write the result file.

    Returns:
        dict: The result (written to ``result_path`` when ``write``).

    Raises:
        RuntimeError: If the model code has uncommitted changes and
            ``args.allow_dirty`` is not set.
    """
    digest, commit, _, train_digest = fingerprint_
    check_clean(spec, args, fingerprint_)
    if prepare is not None:
        prepare(spec, cfg)
    print_log(f'[compare] {spec.name}, {variant}, seed {seed}: '
              f'training {spec.config} in {cfg.work_dir}')
    metrics, val_metrics, step, minutes = train_and_test(
        cfg, digest, commit, args.step_warmup, train_digest)
    result = result_record(spec, args, variant, seed, cfg, fingerprint_,
                           metrics, val_metrics, step, minutes)
    if write:
        path = result_path(args.results_dir, variant, spec.name, seed)
        write_result(path, result)
        print_log(f'[compare] wrote {path}')
    return result


def run_protocol(specs: List[ModelSpec],
                 args,
                 make_cfg=protocol_cfg,
                 write_table=write_results_table,
                 prepare=None) -> dict:
    """Train and test every model per seed and variant, skipping the runs
    whose result file is current; rebuild the table after each run.

    ``make_cfg(spec, args, variant, seed)`` gives a run's config
    (:func:`protocol_cfg`) and ``write_table(specs, args, fingerprints)``
    rebuilds the table (:func:`write_results_table`): ``compare_vis.py``
    passes its own for the video models, and ``prepare`` (see
    :func:`run_one`). The data must exist.

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
                    fingerprints[key] = fingerprint(
                        fingerprint_cfg(spec, args, variant, seed, make_cfg,
                                        cfg))
                digest, commit = fingerprints[key][:2]
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
                run_one(spec, args, variant, seed, cfg, fingerprints[key],
                        prepare)
                done['ran'].append(run)
                write_table(specs, args, fingerprints)
    done['table'] = write_table(specs, args, fingerprints)
    return done
