"""The numbers that papers and official code bases report, from one file.

``docs/results/reported.yml`` (:data:`REPORTED_FILE`) holds every COCO,
Cityscapes and YouTube-VIS number that this zoo quotes and does not
reproduce, with its data set, split and source (the paper and table, or the
official README and the code version behind it). From it,
``tools/analysis_tools/build_tables.py`` (through :mod:`.blocks`) writes

- the ``Results`` of the configs' metafile entries
  (:func:`metafile_results`): the first result of the config's entry, its
  source as a YAML comment;
- the ``<!-- reported:NAME -->`` blocks of the config READMEs
  (:func:`block`): one row per result of the entries of table ``NAME``,
  the sources as footnotes.

The file's own header describes its format; :func:`load_reported` checks
it.
"""
import os.path as osp
import textwrap
from typing import Dict, List, Optional

import yaml

from .results_table import markdown_row
from .tables import DASH, link

REPORTED_FILE = 'docs/results/reported.yml'
START, END = '<!-- reported:{} -->', '<!-- /reported:{} -->'
RESULT_KEYS = ('task', 'dataset', 'split', 'metrics', 'source')
SUPERSCRIPTS = '¹²³⁴⁵⁶⁷⁸⁹'


class ReportedError(ValueError):
    """``reported.yml`` is malformed (the message names the entry)."""


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ReportedError(f'{REPORTED_FILE}: {where}: {what}')


def check(data: dict) -> dict:
    """``data`` (the loaded file) if it is well formed.

    Raises:
        ReportedError: Naming the first problem: an unknown top-level key,
            source or table; a source without ``short``/``cite``; an entry
            with both or neither of ``config`` and ``label``, a config
            listed twice, a ``label`` row that goes in no table, a result
            without one of :data:`RESULT_KEYS` or with a non-numeric
            metric, a README row without one of its table's columns.
    """
    _need(isinstance(data, dict), 'top level', 'must be a mapping')
    unknown = set(data) - {'sources', 'tables', 'entries'}
    _need(not unknown, 'top level', f'unknown keys {sorted(unknown)}')
    sources, tables = data.setdefault('sources', {}), data.setdefault(
        'tables', {})
    entries = data.setdefault('entries', [])
    for key, source in sources.items():
        _need(
            isinstance(source, dict) and 'short' in source
            and 'cite' in source, f'source {key}', 'needs short and cite')
    for key, table in tables.items():
        _need(
            isinstance(table, dict) and 'file' in table
            and isinstance(table.get('columns', []), list), f'table {key}',
            'needs file and a list of columns')
    configs = set()
    for k, entry in enumerate(entries):
        where = f'entry {k} ({entry.get("config") or entry.get("label")})'
        _need(('config' in entry) != ('label' in entry), where,
              'needs either config or label')
        if 'config' in entry:
            _need(entry['config'] not in configs, where, 'listed twice')
            configs.add(entry['config'])
        readme = entry.get('readme')
        _need(readme is not None or 'config' in entry, where,
              'a label row needs readme.table')
        if readme is not None:
            _need(readme.get('table') in tables, where,
                  f'readme.table must be one of {sorted(tables)}')
            missing = [
                c for c in tables[readme['table']].get('columns', [])
                if c not in readme
            ]
            _need(not missing, where, f'readme lacks {missing}')
        results = entry.get('results')
        _need(isinstance(results, list) and results, where,
              'needs a list of results')
        for result in results:
            missing = [key for key in RESULT_KEYS if key not in result]
            _need(not missing, where, f'a result lacks {missing}')
            _need(result['source'] in sources, where,
                  f'unknown source {result["source"]}')
            metrics = result['metrics']
            _need(
                isinstance(metrics, dict) and metrics and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in metrics.values()), where,
                'metrics must map names to numbers')
    return data


def load_reported(root: str) -> dict:
    """``<root>/docs/results/reported.yml``, checked; empty (no sources,
    tables or entries) when there is none."""
    path = osp.join(root, REPORTED_FILE)
    if not osp.isfile(path):
        return dict(sources={}, tables={}, entries=[])
    with open(path) as f:
        return check(yaml.safe_load(f) or {})


def entry_of(reported: dict, config: str) -> Optional[dict]:
    """The entry of ``config`` (from the repository root), or None."""
    return next(
        (e for e in reported['entries'] if e.get('config') == config), None)


def _text(value) -> str:
    return ' '.join(str(value).split())


def metafile_results(reported: dict, config: str,
                     indent: str = '    ') -> Optional[str]:
    """The ``Results`` of ``config``'s metafile entry: the first result of
    its entry in ``reported``, its source's ``metafile`` (or ``cite``) as
    a comment above it; None when it has no entry."""
    entry = entry_of(reported, config)
    if entry is None:
        return None
    result = entry['results'][0]
    source = reported['sources'][result['source']]
    comment = ('Reported, not reproduced here: '
               f'{_text(source.get("metafile") or source["cite"])}. From '
               f'{REPORTED_FILE}.')
    lines = [f'{indent}Results:']
    lines += textwrap.wrap(comment, 79, initial_indent=f'{indent}  # ',
                           subsequent_indent=f'{indent}  # ',
                           break_on_hyphens=False, break_long_words=False)
    lines += [
        f'{indent}  - Task: {result["task"]}',
        f'{indent}    Dataset: {result["dataset"]}', f'{indent}    Metrics:'
    ]
    note = f'; {_text(result["note"])}' if result.get('note') else ''
    for name, value in result['metrics'].items():
        lines.append(f'{indent}      {name}: {value}  # reported, '
                     f'{result["split"]}{note}')
    return '\n'.join(lines) + '\n'


def _mark(i: int) -> str:
    return SUPERSCRIPTS[i] if i < len(SUPERSCRIPTS) else f'[{i + 1}]'


def block(reported: dict, name: str) -> str:
    """The content of the README block ``<!-- reported:NAME -->``: a row
    per result of the entries of table ``name``, the sources as
    footnotes, the table's notes."""
    spec = reported['tables'][name]
    source_file, columns = spec['file'], spec.get('columns', [])
    rows = [(e, r) for e in reported['entries']
            if (e.get('readme') or {}).get('table') == name
            for r in e['results']]
    metrics, sources = [], []
    for _, result in rows:
        metrics += [m for m in result['metrics'] if m not in metrics]
        if result['source'] not in sources:
            sources.append(result['source'])
    lines = [
        markdown_row(['Config', *columns, *metrics, 'reported on', 'source']),
        '|' + '|'.join([':---'] + [':---:'] * len(columns) +
                       ['---:'] * len(metrics) + [':---'] * 2) + '|'
    ]
    for entry, result in rows:
        if 'config' in entry:
            label = link(entry['config'], source_file)
            if entry.get('from'):
                label = f'{link(entry["from"], source_file)} then {label}'
        else:
            label = _text(entry['label'])
        data = f'{result["dataset"]} {result["split"]}'
        if result.get('note'):
            data += f' ({_text(result["note"])})'
        source = result['source']
        lines.append(markdown_row([
            label, *[_text(entry['readme'][c]) for c in columns],
            *[str(result['metrics'].get(m, DASH)) for m in metrics], data,
            f'{reported["sources"][source]["short"]} '
            f'{_mark(sources.index(source))}'
        ]))
    for i, source in enumerate(sources):
        lines += [
            '', f'{_mark(i)} {_text(reported["sources"][source]["cite"])}'
        ]
    reported_file = osp.relpath(REPORTED_FILE,
                                osp.dirname(source_file) or '.')
    notes = [_text(n) for n in spec.get('notes', [])]
    lines += [
        '', ' '.join(notes + [
            'Reported numbers, not reproduced here. Built by '
            '`tools/analysis_tools/build_tables.py` from '
            f'[docs/results/reported.yml]({reported_file}).'
        ])
    ]
    return '\n'.join(lines) + '\n'


def blocks_of(reported: dict, path: str) -> Dict[str, str]:
    """``{name: content}`` of the reported blocks that go in ``path``."""
    return {
        name: block(reported, name)
        for name, spec in reported['tables'].items() if spec['file'] == path
    }
