"""Result files of training runs and the tables built from them.

``compare.py --seeds ... --variants ...`` writes one JSON file per finished
run, ``<results_dir>/<variant>/<model>/seed<S>.json``, with what was
trained (config path and digest, the commit of the code behind it, seed,
data variant, iterations) and every metric the test evaluator returned.
The files are committed, so runs accumulate across machines and sessions;
the tables are rebuilt from them. A file counts for a model only while its
config digest and code commit equal the current ones (:func:`is_current`):
after a change to the model the old runs are *stale* and listed apart.
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
# The same for video instance segmentation (PEPYouTubeVISMetric's keys).
VIS_TABLE_METRICS = (
    ('youtube_vis/segm_mAP', 'VIS AP', 100.),
    ('youtube_vis/segm_mAP_50', 'AP50', 100.),
    ('youtube_vis/segm_mAP_75', 'AP75', 100.),
    ('youtube_vis/id_switches', 'ID switches', 1.),
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
                    r['metrics'][key] for r in runs[(name, variant)]
                    if r['metrics'].get(key, -1) != -1
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


def _cell(value: Optional[tuple], scale: float) -> str:
    if value is None:
        return '-'
    mean, std, _ = value
    digits = 1 if scale == 100. else 2
    text = f'{mean * scale:.{digits}f}'
    return text if std is None else f'{text} ± {std * scale:.{digits}f}'


def results_markdown(results: List[dict],
                     stale: List[dict],
                     names: Sequence[str],
                     variants: Sequence[str],
                     title: str,
                     metrics: Sequence[tuple] = TABLE_METRICS,
                     note: str = IMAGE_NOTE,
                     tool: str = 'compare.py --seeds ... --variants ...'
                     ) -> str:
    """The summary table, every run, and the stale runs, in Markdown.

    ``metrics`` are the columns (see :func:`summarize`), ``note`` what they
    mean and ``tool`` the command of ``tools/analysis_tools/`` that
    writes the result files.
    """
    summary = summarize(results, names, variants, metrics)
    columns = ['Model', 'Data', 'runs'] + [t for _, t, _ in metrics]
    lines = [
        f'# {title}', '',
        f'Built by `tools/analysis_tools/{tool}` from the result files '
        'in this folder (one per training run: '
        '`<variant>/<model>/seed<S>.json`); do not edit by hand. '
        'Mean ± sample std over seeds; `all` is the mean of the variant '
        f'means with the pooled seed std. {note}', '',
        '| ' + ' | '.join(columns) + ' |',
        '|' + '|'.join([':---'] * 2 + ['---:'] * (len(columns) - 2)) + '|'
    ]
    # 'all' (the mean over variants) only when there is more than one.
    rows = list(variants) + (['all'] if len(variants) > 1 else [])
    for name in names:
        for variant in rows:
            row = summary[name][variant]
            if not row:
                continue
            runs = max(v[2] for v in row.values())
            lines.append('| ' + ' | '.join(
                [name, variant, str(runs)] +
                [_cell(row.get(key), scale)
                 for key, _, scale in metrics]) + ' |')
    lines += ['', '## Every run', '']
    run_columns = ['Model', 'Data', 'seed', 'iters', 'code'] + [
        t for _, t, _ in metrics
    ]
    lines += [
        '| ' + ' | '.join(run_columns) + ' |',
        '|' + '|'.join([':---'] * 5 + ['---:'] *
                       (len(run_columns) - 5)) + '|'
    ]
    for r in results:
        lines.append('| ' + ' | '.join(
            [r['name'], r['variant'],
             str(r['seed']),
             str(r['max_iters']), r['code_commit'][:9]] + [
                 _cell((r['metrics'][key], None, 1), scale)
                 if r['metrics'].get(key, -1) != -1 else '-'
                 for key, _, scale in metrics
             ]) + ' |')
    if stale:
        lines += [
            '', f'{len(stale)} stale run(s), of an older config or model '
            'code, are left out: ' + ', '.join(
                f'{r["variant"]}/{r["name"]}/seed{r["seed"]} '
                f'({r["code_commit"][:9]})' for r in stale) + '.'
        ]
    return '\n'.join(lines) + '\n'
