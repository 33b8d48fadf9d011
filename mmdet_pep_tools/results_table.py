"""Markdown tables of the result store: a results folder's ``README.md``.

:func:`results_markdown` renders the current runs of a results folder
(``compare.py`` and ``build_tables.py`` write it; stale runs are only
counted). :func:`archive_markdown` renders an archive of old runs that are
no longer judged against the code (``docs/experiments/results/``): one row
group per model and code commit.
"""
from collections import defaultdict
from typing import List, Optional, Sequence

from mmdet_pep.datasets.synthetic import VARIANTS
from .results import (IMAGE_NOTE, TABLE_METRICS, mean_std, metric_value,
                      summarize)


def markdown_row(cells: Sequence[str]) -> str:
    """One Markdown table row of ``cells``."""
    return '| ' + ' | '.join(cells) + ' |'


def cell(value: Optional[tuple], scale: float, empty: str = '-') -> str:
    """``mean ± std`` of a ``(mean, std, n)`` summary (``mean`` alone for
    one run), ``empty`` for None. Percentages (``scale`` 100) and values of
    10 or more (counts, milliseconds) get one decimal, others two."""
    if value is None:
        return empty
    mean, std, _ = value
    digits = 1 if scale == 100. or abs(mean * scale) >= 10 else 2
    text = f'{mean * scale:.{digits}f}'
    return text if std is None else f'{text} ± {std * scale:.{digits}f}'


def header(columns: Sequence[str], left: int) -> List[str]:
    """A Markdown table header: ``left`` left-aligned columns, the rest
    right-aligned."""
    return [
        '| ' + ' | '.join(columns) + ' |',
        '|' + '|'.join([':---'] * left + ['---:'] *
                       (len(columns) - left)) + '|'
    ]


def _summary_rows(results: List[dict], names: Sequence[str],
                  variants: Sequence[str], metrics: Sequence[tuple],
                  labels: Optional[dict] = None) -> List[str]:
    """Rows ``label | variant | runs | metrics``: per variant, and ``all``
    (the mean over variants) when there is more than one."""
    summary = summarize(results, names, variants, metrics)
    rows = list(variants) + (['all'] if len(variants) > 1 else [])
    lines = []
    for name in names:
        for variant in rows:
            row = summary[name][variant]
            if not row:
                continue
            runs = max(v[2] for v in row.values())
            lines.append('| ' + ' | '.join(
                [(labels or {}).get(name, name), variant, str(runs)] +
                [cell(row.get(key), scale)
                 for key, _, scale in metrics]) + ' |')
    return lines


def _run_rows(results: List[dict], metrics: Sequence[tuple]) -> List[str]:
    """The table of every run."""
    lines = header(['Model', 'Data', 'seed', 'iters', 'code'] +
                   [t for _, t, _ in metrics], 5)
    for r in results:
        values = [metric_value(r, key) for key, _, _ in metrics]
        lines.append('| ' + ' | '.join(
            [r['name'], r['variant'],
             str(r['seed']),
             str(r['max_iters']), r['code_commit'][:9]] + [
                 cell(None if value is None else (value, None, 1), scale)
                 for value, (_, _, scale) in zip(values, metrics)
             ]) + ' |')
    return lines


def results_markdown(results: List[dict],
                     stale: List[dict],
                     names: Sequence[str],
                     variants: Sequence[str],
                     title: str,
                     metrics: Sequence[tuple] = TABLE_METRICS,
                     note: str = IMAGE_NOTE,
                     tool: str = 'compare.py --seeds ... --variants ...'
                     ) -> str:
    """The summary table and every current run, in Markdown.

    ``metrics`` are the columns (see :func:`~.results.summarize`), ``note``
    what they mean and ``tool`` the command of ``tools/analysis_tools/``
    that writes the result files. Stale runs are counted, not listed: no
    number of the page comes from them.
    """
    columns = ['Model', 'Data', 'runs'] + [t for _, t, _ in metrics]
    lines = [
        f'# {title}', '',
        f'Built by `tools/analysis_tools/{tool}` from the result files '
        'in this folder (one per training run: '
        '`<variant>/<model>/seed<S>.json`); do not edit by hand. '
        'Mean ± sample std over seeds; `all` is the mean of the variant '
        f'means with the pooled seed std. {note}', '',
        *header(columns, 2)
    ]
    lines += _summary_rows(results, names, variants, metrics)
    lines += ['', '## Every run', '']
    lines += _run_rows(results, metrics)
    if stale:
        lines += [
            '', f'{len(stale)} stale run(s), of an older config or model '
            'code, are left out.'
        ]
    return '\n'.join(lines) + '\n'


def archive_markdown(results: List[dict],
                     title: str,
                     intro: str,
                     variants: Sequence[str],
                     metrics: Sequence[tuple] = TABLE_METRICS,
                     note: str = IMAGE_NOTE) -> str:
    """An archive of old runs, not judged against today's code.

    Every run counts, grouped by model and code commit (one group per
    configuration: a model's runs at one commit share their config), in
    the order of model name, then of the groups' first date.
    """
    groups = defaultdict(list)
    for r in results:
        groups[(r['name'], r['code_commit'][:9])].append(r)
    keys = sorted(groups, key=lambda k: (k[0], min(
        r.get('date', '') for r in groups[k]), k[1]))
    labels = {f'{n}@{c}': f'{n} | {c}' for n, c in keys}
    renamed = [
        dict(r, name=f'{n}@{c}') for (n, c) in keys for r in groups[(n, c)]
    ]
    columns = ['Model', 'code', 'Data', 'runs'] + [t for _, t, _ in metrics]
    lines = [
        f'# {title}', '', intro, '',
        'Built by `tools/analysis_tools/build_tables.py` from the result '
        'files in this folder (`<variant>/<model>/seed<S>.json`); do not '
        'edit by hand. Mean ± sample std over seeds; `all` is the mean of '
        'the variant means with the pooled seed std. '
        f'{note}', '', *header(columns, 3)
    ]
    lines += _summary_rows(renamed, list(labels), variants, metrics, labels)
    lines += ['', '## Every run', '']
    lines += _run_rows(results, metrics)
    return '\n'.join(lines) + '\n'


def pooled(runs: List[dict], key: str, field: str = 'metrics') -> dict:
    """Mean and spread of ``key`` over runs: per variant (mean, std, n) and
    ``all`` (mean of the variant means, pooled seed std, n), over the
    variants that have a value."""
    by_variant = {}
    for variant in VARIANTS:
        values = [(r.get(field) or {}).get(key, -1) for r in runs
                  if r['variant'] == variant]
        values = [v for v in values if v != -1]
        if values:
            by_variant[variant] = (*mean_std(values), len(values))
    if by_variant:
        cells = list(by_variant.values())
        stds = [c[1] for c in cells]
        std = ((sum(s**2 for s in stds) / len(stds))**0.5
               if None not in stds else None)
        by_variant['all'] = (sum(c[0] for c in cells) / len(cells), std,
                             sum(c[2] for c in cells))
    return by_variant


def seed_list(runs: List[dict]) -> str:
    """The runs' seeds, ascending: ``0, 1, 2``."""
    return ', '.join(str(r['seed']) for r in sorted(runs,
                                                    key=lambda r: r['seed']))


def run_count(runs: List[dict]) -> str:
    """``3 seeds × 2 variants`` when balanced, else ``n runs (...)``."""
    per_variant = {v: sum(r['variant'] == v for r in runs) for v in VARIANTS}
    per_variant = {v: n for v, n in per_variant.items() if n}
    counts = set(per_variant.values())
    if len(counts) == 1:
        (n, ) = counts
        variants = (f'{len(per_variant)} variants' if len(per_variant) > 1
                    else f'1 variant ({next(iter(per_variant))})')
        return f'{n} seed{"s" * (n > 1)} × {variants}'
    return f'{len(runs)} runs (' + ', '.join(
        f'{v} {n}' for v, n in per_variant.items()) + ')'
