"""The result store: one file per training run, and latency files.

``compare.py --seeds ... --variants ...`` writes one JSON file per finished
run, ``<results_dir>/<variant>/<model>/seed<S>.json``, with what was
trained (config path and digest, the commit of the code behind it, seed,
data variant, iterations), the split it was tested on (``split``), every
metric the test evaluator returned on it (``metrics``) and on the val split
(``val_metrics``). The files are committed, so runs accumulate across
machines and sessions; every table is rebuilt from them
(:mod:`.results_table`, :mod:`.tables`). A file counts for a model only
while its config digest and code commit equal the current ones
(:func:`is_current`): after a change to the model the old runs are *stale*.

``compare.py --latency-dir DIR`` writes ``<DIR>/<model>.json`` (see
:func:`write_latency`), the latency of one model on one machine.
"""
import json
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

# The metrics of the tables: result key (CrowdCocoMetric's, with its
# 'coco/' prefix), column title, scale for printing.
TABLE_METRICS = (
    ('coco/segm_mAP', 'mask AP', 100.),
    ('coco/bbox_mAP', 'box AP', 100.),
    ('coco/segm_crowded_mAP', 'crowded AP', 100.),
    ('coco/segm_crowded_recall50', 'crowded R@0.5', 100.),
    ('coco/segm_isolated_mAP', 'isolated AP', 100.),
    ('coco/segm_isolated_recall50', 'isolated R@0.5', 100.),
    ('coco/segm_duplicates_per_img', 'dup/img', 1.),
)
# The same for video instance segmentation (the VIS metric's keys).
VIS_TABLE_METRICS = (
    ('youtube_vis/segm_mAP', 'VIS AP', 100.),
    ('youtube_vis/segm_mAP_50', 'AP50', 100.),
    ('youtube_vis/segm_mAP_75', 'AP75', 100.),
    ('youtube_vis/id_switches', 'ID switches', 1.),
    ('youtube_vis/frame_segm_mAP', 'frame AP', 100.),
    ('test_ms_per_frame', 'test ms/frame', 1.),
    # A run's own field, not the evaluator's (see metric_value).
    ('train_step_ms', 'train ms/step', 1.),
)
IMAGE_NOTE = (
    'AP and recall in %, mask (segm) metrics of `CrowdCocoMetric` '
    '(crowded: within 2 px of a same-class instance), dup/img: duplicates '
    'among the top 100 predictions per image.')
RESULT_KEYS = ('name', 'config', 'config_digest', 'code_commit', 'variant',
               'seed', 'max_iters', 'metrics')


def result_path(results_dir: str, variant: str, name: str,
                seed: int) -> str:
    """``<results_dir>/<variant>/<name>/seed<seed>.json``."""
    return osp.join(results_dir, variant, name, f'seed{seed}.json')


def write_result(path: str, result: dict) -> None:
    """Write one run's result file (keys :data:`RESULT_KEYS` at least).

    Raises:
        ValueError: If a key of :data:`RESULT_KEYS` is missing.
    """
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise ValueError(f'result for {path} lacks {missing}')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write('\n')


def read_result(path: str) -> dict:
    """One result file, checked for the keys of :data:`RESULT_KEYS`.

    Raises:
        ValueError: If the file is not JSON or lacks a key (named with the
            file).
    """
    try:
        with open(path) as f:
            result = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not a result file ({e})') from e
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise ValueError(f'{path}: result file lacks {missing}')
    return result


def load_results(results_dir: str) -> List[dict]:
    """Every ``<variant>/<model>/seed*.json`` under ``results_dir``,
    sorted by variant, model and seed."""
    results = []
    if not osp.isdir(results_dir):
        return results
    for variant in sorted(os.listdir(results_dir)):
        variant_dir = osp.join(results_dir, variant)
        if not osp.isdir(variant_dir):
            continue
        for name in sorted(os.listdir(variant_dir)):
            model_dir = osp.join(variant_dir, name)
            if not osp.isdir(model_dir):
                continue
            for file in sorted(os.listdir(model_dir)):
                if file.startswith('seed') and file.endswith('.json'):
                    results.append(read_result(osp.join(model_dir, file)))
    results.sort(key=lambda r: (r['variant'], r['name'], r['seed']))
    return results


def is_current(result: dict, fingerprint: Tuple[str, str]) -> bool:
    """Whether ``result`` was trained from the config digest and code
    commit of ``fingerprint`` (a ``+dirty`` commit never is)."""
    digest, commit = fingerprint
    return (result['config_digest'] == digest
            and result['code_commit'] == commit
            and not commit.endswith('+dirty'))


def metric_value(result: dict, key: str) -> Optional[float]:
    """The value of a table column in one result file: the evaluator's
    ``metrics[key]``, else the run's own numeric field ``key`` (e.g.
    ``train_step_ms``); None where neither exists or the metric is -1
    (COCO's "empty subset")."""
    value = result['metrics'].get(key, result.get(key))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if value == -1 else float(value)


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof 1; None for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def summarize(results: List[dict],
              names: Sequence[str],
              variants: Sequence[str],
              metrics: Sequence[tuple] = TABLE_METRICS) -> Dict[str, dict]:
    """Mean and spread over seeds, per model and data variant.

    Args:
        results: Current result files (see :func:`is_current`).
        names: Models, in table order.
        variants: Data variants, in table order.
        metrics: ``(result key, column title, scale)`` of each column
            (:data:`TABLE_METRICS` or :data:`VIS_TABLE_METRICS`).

    Returns:
        dict: ``{name: {variant: {key: (mean, std, n)}, 'all': ...}}`` for
        the keys of ``metrics`` (a run without a key, e.g. no
        detections, leaves it out; -1, "empty subset", too). ``'all'`` is
        the mean over variants of the variant means, with the pooled seed
        std (root mean of the variances), only when every variant has a
        value; its n is the number of runs.
    """
    runs = defaultdict(list)
    for r in results:
        runs[(r['name'], r['variant'])].append(r)
    summary = {}
    for name in names:
        rows = {}
        for variant in variants:
            row = {}
            for key, _, _ in metrics:
                values = [
                    v for v in (metric_value(r, key)
                                for r in runs[(name, variant)])
                    if v is not None
                ]
                if values:
                    row[key] = (*mean_std(values), len(values))
            rows[variant] = row
        pooled = {}
        for key, _, _ in metrics:
            cells = [rows[v].get(key) for v in variants]
            if not all(cells):
                continue
            stds = [c[1] for c in cells]
            std = (math.sqrt(sum(s**2 for s in stds) / len(stds))
                   if None not in stds else None)
            pooled[key] = (sum(c[0] for c in cells) / len(cells), std,
                           sum(c[2] for c in cells))
        rows['all'] = pooled
        summary[name] = rows
    return summary


LATENCY_KEYS = ('name', 'config', 'code_commit', 'model_digest', 'device',
                'device_name', 'threads', 'latency')


def latency_path(latency_dir: str, name: str) -> str:
    """``<latency_dir>/<name>.json``."""
    return osp.join(latency_dir, f'{name}.json')


def write_latency(path: str, latency: dict) -> None:
    """Write one model's latency file (keys :data:`LATENCY_KEYS` at least;
    ``latency`` as :func:`~.benchmark.summarize_latencies` gives it).

    Raises:
        ValueError: If a key of :data:`LATENCY_KEYS` is missing.
    """
    missing = [k for k in LATENCY_KEYS if k not in latency]
    if missing:
        raise ValueError(f'latency for {path} lacks {missing}')
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(latency, f, indent=1, sort_keys=True)
        f.write('\n')


def load_latencies(latency_dir: str) -> Dict[str, dict]:
    """Every ``<name>.json`` of ``latency_dir`` by model name ({} if the
    folder does not exist).

    Raises:
        ValueError: If a file lacks a key of :data:`LATENCY_KEYS`.
    """
    found = {}
    if not osp.isdir(latency_dir):
        return found
    for file in sorted(os.listdir(latency_dir)):
        if not file.endswith('.json'):
            continue
        path = osp.join(latency_dir, file)
        with open(path) as f:
            latency = json.load(f)
        missing = [k for k in LATENCY_KEYS if k not in latency]
        if missing:
            raise ValueError(f'{path}: latency file lacks {missing}')
        found[latency['name']] = latency
    return found
