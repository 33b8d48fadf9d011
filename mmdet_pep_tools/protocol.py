"""The multi-seed protocol: every model once per seed and data variant.

Every model is trained once per seed on every data variant of the
synthetic set (``VARIANTS``: ``demo``, and ``dense`` with larger images,
four classes, smaller objects in larger clusters) and tested with
``CrowdCocoMetric`` on the held-out test split and on the val split (on
the ``crowded`` variant with ``DisplacedCocoMetric``, which also scores the
instances that lose their grid cells apart, see
:data:`DISPLACED_VARIANTS`). Each
finished run writes ``<results-dir>/<variant>/<model>/seed<S>.json``
(:mod:`.results`); a run whose file is current (same config digest and
code commit) is skipped, so the protocol resumes where it stopped. After
every run ``<results-dir>/README.md`` is rebuilt from the files.

This module makes and judges the runs' configs and results; :mod:`.runs`
trains and tests them.
"""
import argparse
import json
import logging
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmdet_pep.datasets.synthetic import VARIANTS, metainfo
from . import ROOT
from .displaced import displaced_file
from .config_rewrites import (set_classes, set_data_root, set_image_scale,
                              set_max_iters, set_seed)
from .provenance import (code_commit, code_files, config_digest,
                         training_digest)
from .results import is_current, load_results, read_result
from .results_table import results_markdown
from .specs import ModelSpec
from .variant_data import (DISPLACED_REFERENCE, DISPLACED_VARIANTS,  # noqa
                           ensure_variant_data, variant_data_root)

#: ``compare.py --data-dir``'s default: runs are fingerprinted as if their
#: data lay there (:func:`fingerprint_cfg`).
DATA_DIR = 'data'


def use_crowd_metric(cfg: Config, displaced: bool = False) -> None:
    """Test with ``CrowdCocoMetric`` where the config tests with
    ``CocoMetric`` (same arguments): it adds crowded/isolated AP and
    recall and duplicates to the COCO numbers. With ``displaced``,
    ``DisplacedCocoMetric`` with the flags of :func:`displaced_file`
    instead: it adds the displaced/placed AP and recall too."""
    evaluators = cfg.get('test_evaluator')
    for evaluator in (evaluators if isinstance(evaluators, list) else
                      [evaluators] if evaluators else []):
        if evaluator.get('type') in ('CocoMetric', 'mmdet.CocoMetric'):
            evaluator.type = 'CrowdCocoMetric'
            if displaced:
                evaluator.type = 'DisplacedCocoMetric'
                evaluator.displaced_file = displaced_file(
                    evaluator.ann_file)


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
    use_crowd_metric(cfg, displaced=variant in DISPLACED_VARIANTS)
    cfg.work_dir = osp.join(args.work_dir, variant, spec.name, f'seed{seed}')
    cfg.experiment_name = f'{variant}_{spec.name}_seed{seed}'
    return cfg


def fingerprint(cfg: Config) -> tuple:
    """``(config digest, code commit, code files, training digest)`` of a
    run's config."""
    files = code_files(cfg)
    return (config_digest(cfg), code_commit(files, ROOT), files,
            training_digest(cfg))


def fingerprint_cfg(spec: ModelSpec,
                    args,
                    variant: str,
                    seed: int,
                    make_cfg=protocol_cfg,
                    cfg: Optional[Config] = None) -> Config:
    """The config a run is fingerprinted by: ``make_cfg``'s, with the
    variant's data under the default ``--data-dir`` (:data:`DATA_DIR`).
    ``cfg``, the run's own config when the caller has built it, is that
    config where ``--data-dir`` is the default (not built again).

    The variants are generated deterministically, the same files in any
    folder, so where ``--data-dir`` puts them changes nothing that is
    trained or tested: a run made with ``--data-dir /scratch`` is current
    for the table that ``build_tables.py`` builds with the default, and a
    finished training there is reused. (A folder must therefore hold the
    generated data sets, not others under their names.)
    """
    if getattr(args, 'data_dir', DATA_DIR) != DATA_DIR:
        args = argparse.Namespace(**{**vars(args), 'data_dir': DATA_DIR})
    elif cfg is not None:
        return cfg
    return make_cfg(spec, args, variant, seed)


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


def judge_results(specs: List[ModelSpec],
                  args,
                  fingerprints: dict,
                  make_cfg=protocol_cfg,
                  known_variants=tuple(VARIANTS)) -> dict:
    """The result files of ``args.results_dir``, current or stale.

    A file is current when its config digest and code commit equal those of
    the model's config now (computed here with ``make_cfg``, as
    :func:`protocol_cfg`, for models not yet seen; ``fingerprints`` caches
    them). The command line's ``--cfg-options`` apply to the models it
    names; a model of the folder that it does not name is judged with the
    options its own run recorded. Runs of a variant not in
    ``known_variants`` are stale.

    Returns:
        dict: ``specs`` (the given models, then the folder's others),
        ``variants`` (of the table), ``current`` and ``stale`` (result
        dicts) and ``hint`` (what to rebuild with when stale runs were
        trained for another schedule, else None).
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
            cfg = fingerprint_cfg(spec, run_args, r['variant'], 0, make_cfg)
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
    hint = None
    if other_iters:
        # The schedule is part of the config digest: a table rebuilt
        # without the --max-iters its runs were trained with judges them
        # all stale (and may come out empty).
        trained = sorted(other_iters)
        built = sorted(i for i in built_iters if i)
        hint = (f'Stale runs trained for {trained} iterations, this table '
                f'for {built}: rebuild with --max-iters '
                f'{trained[0]} to judge them.')
    return dict(specs=specs, variants=variants, current=current,
                stale=stale, hint=hint)


def results_table(specs: List[ModelSpec],
                  args,
                  fingerprints: dict,
                  make_cfg=protocol_cfg,
                  known_variants=tuple(VARIANTS),
                  title: str = 'Held-out test split: results over seeds',
                  **table) -> str:
    """The text of ``<results-dir>/README.md``: the current runs of
    :func:`judge_results`; ``table`` goes to :func:`results_markdown` (its
    columns, note and tool)."""
    judged = judge_results(specs, args, fingerprints, make_cfg,
                           known_variants)
    if judged['hint']:
        print_log(f'[compare] {judged["hint"]}', level=logging.WARNING)
    return judged_markdown(judged, title, **table)


def current_names(judged: dict) -> List[str]:
    """The models of a :func:`judge_results` answer that have current
    runs, in table order."""
    return [
        s.name for s in judged['specs']
        if any(r['name'] == s.name for r in judged['current'])
    ]


def judged_markdown(judged: dict, title: str, **table) -> str:
    """A results page of a :func:`judge_results` answer: its current runs
    (:func:`results_markdown`, with ``table``'s columns, note and tool),
    then the stale runs' rebuild hint, if any."""
    text = results_markdown(judged['current'], judged['stale'],
                            current_names(judged), judged['variants'], title,
                            **table)
    if judged['hint']:
        text += f'\n{judged["hint"]}\n'
    return text


def write_results_table(specs: List[ModelSpec], args, fingerprints: dict,
                        **kwargs) -> str:
    """Rebuild ``<results-dir>/README.md`` from the result files
    (:func:`results_table`, with its keyword arguments); returns it."""
    text = results_table(specs, args, fingerprints, **kwargs)
    mkdir_or_exist(args.results_dir)
    path = osp.join(args.results_dir, 'README.md')
    with open(path, 'w') as f:
        f.write(text)
    return text
