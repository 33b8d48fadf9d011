"""Put the generated tables of :mod:`.tables` into the files, or check them.

- Markdown: the text between ``<!-- results:NAME -->`` and
  ``<!-- /results:NAME -->`` is the block ``NAME`` of
  :data:`.tables.TABLES`; a known block without its markers is an error
  that names the file.
- Markdown: the text between ``<!-- reported:NAME -->`` and
  ``<!-- /reported:NAME -->`` is the table ``NAME`` of
  ``docs/results/reported.yml`` (:mod:`.reported`). Markers of a block
  that no spec puts in that file are an error too.
- ``configs/*/metafile.yml``: the ``Results`` of every entry whose
  ``Config`` is a synthetic config (``*_synthetic.py``) are rebuilt from
  its current runs, or removed when it has none. Those of every other entry
  (COCO, Cityscapes, YouTube-VIS: the papers' numbers) are written from
  ``docs/results/reported.yml``, or removed when it does not list the
  config.
- The pages of :data:`.tables.PAGES` are generated whole.
"""
import difflib
import glob
import os
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Tuple

from . import reported as rep
from .table_state import load_state
from .tables import (DATASET, PAGES, TABLES, block, pooled, run_count, MASK,
                     BOX, page)

START, END = '<!-- results:{} -->', '<!-- /results:{} -->'
MARKER = re.compile(r'<!-- /?(results|reported):(\S+) -->')


class MarkerError(ValueError):
    """A block's markers are missing, repeated or out of order."""


def replace_block(text: str, name: str, content: str, path: str,
                  marks: Tuple[str, str] = (START, END)) -> str:
    """``text`` with the block ``name`` replaced by ``content``.

    ``marks``: the start and end marker formats, ``results`` by default
    (:data:`.reported.START`, :data:`.reported.END` for the reported
    blocks).

    Raises:
        MarkerError: Naming ``path``, if the markers are not there once
            each, start before end.
    """
    start, end = (m.format(name) for m in marks)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(
            end) < text.index(start):
        raise MarkerError(
            f'{path}: needs the markers {start} and {end} once each, in '
            f'this order, where the table "{name}" goes')
    i, j = text.index(start) + len(start), text.index(end)
    return f'{text[:i]}\n\n{content}\n{text[j:]}'


def metafile_results(state: dict, config: str,
                     indent: str = '    ') -> Optional[str]:
    """The ``Results`` of a synthetic config's metafile entry: mask and box
    AP on the held-out test split, the mean over the current runs of
    ``config`` without ``--cfg-options``; None when there are none. A
    run belongs to the model whose config it is current for (its file may
    name an older file of the same config digest)."""
    runs = [
        r for name, rs in state['runs'].items() for r in rs
        if state.get('configs', {}).get(name, r['config']) == config
        and not r.get('cfg_options')
    ]
    if not runs:
        return None
    lines = [f'{indent}Results:']
    for task, title, key in (('Instance Segmentation', 'mask AP', MASK),
                             ('Object Detection', 'box AP', BOX)):
        value = pooled(runs, key).get('all')
        if value is None:
            continue
        lines += [
            f'{indent}  - Task: {task}', f'{indent}    Dataset: {DATASET}',
            f'{indent}    Metrics:',
            f'{indent}      {title}: {value[0] * 100:.1f}  # mean of '
            f'{run_count(runs)}; build_tables.py'
        ]
    return '\n'.join(lines) + '\n'


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(' '))


def replace_metafile_results(text: str, state: dict,
                             reported: Optional[dict] = None) -> str:
    """``text`` (a metafile) with the ``Results`` of its entries rebuilt:
    a synthetic config's from ``state``'s runs, any other's from
    ``reported`` (:func:`.reported.load_reported`; None: no reported
    numbers)."""
    reported = reported or dict(sources={}, tables={}, entries=[])
    lines = text.splitlines(keepends=True)
    starts = [
        k for k, line in enumerate(lines) if line.startswith('  - Name:')
    ]
    out = lines[:starts[0]] if starts else lines
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        entry = lines[a:b]
        config = next((line.split(':', 1)[1].strip() for line in entry
                       if line.startswith('    Config:')), '')
        if config.endswith('_synthetic.py'):
            new = metafile_results(state, config)
        else:
            new = rep.metafile_results(reported, config)
        new = new.splitlines(keepends=True) if new else []
        first = next((k for k, line in enumerate(entry)
                      if line.startswith('    Results:')), None)
        if first is None:  # after the entry's last field
            last = max(k for k, line in enumerate(entry)
                       if line.strip() and _indent(line) >= 4)
            first = end = last + 1
        else:
            end = first + 1
            while (end < len(entry) and entry[end].strip()
                   and _indent(entry[end]) >= 6):
                end += 1
        out += entry[:first] + new + entry[end:]
    return ''.join(out)


def targets(root: str) -> List[str]:
    """Every generated file under ``root`` (from the repository root)."""
    files = sorted({spec['file'] for spec in TABLES.values()} | {
        spec['file']
        for spec in rep.load_reported(root)['tables'].values()
    })
    files += sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, 'configs', '*', 'metafile.yml')))
    files += [
        p for p in PAGES
        if PAGES[p]['kind'] == 'results' or osp.isdir(
            osp.join(root, osp.dirname(p)))
    ]
    return files


def render(root: str,
           only: Optional[Iterable[str]] = None) -> Dict[str, Tuple]:
    """The generated files, as ``{path: (text now, text built)}``.

    ``only`` limits it to those paths (from the repository root); the text
    now is None for a page that does not exist yet.

    Raises:
        MarkerError: Listing every file that lacks a block's markers or
            has the markers of a block that does not go there.
        FileNotFoundError: If a file with blocks does not exist.
        ReportedError: If ``docs/results/reported.yml`` is malformed.
    """
    paths = targets(root)
    if only is not None:
        only = [osp.normpath(p) for p in only]
        unknown = sorted(set(only) - set(paths))
        if unknown:
            raise ValueError(f'{unknown} are not generated files; they are '
                             f'{paths}')
        paths = [p for p in paths if p in only]
    state, reported = load_state(root), rep.load_reported(root)
    built, errors = {}, []
    for path in paths:
        full = osp.join(root, path)
        old = open(full).read() if osp.isfile(full) else None
        if path in PAGES:
            built[path] = (old, page(path, state, root))
        elif path.endswith('metafile.yml'):
            built[path] = (old,
                           replace_metafile_results(old, state, reported))
        else:
            if old is None:
                raise FileNotFoundError(f'{full}: the blocks '
                                        f'{sorted(TABLES)} need it')
            new = old
            contents = [('results', name, block(name, state), (START, END))
                        for name, spec in TABLES.items()
                        if spec['file'] == path]
            contents += [('reported', name, content, (rep.START, rep.END))
                         for name, content in rep.blocks_of(
                             reported, path).items()]
            for _, name, content, marks in contents:
                try:
                    new = replace_block(new, name, content, path, marks)
                except MarkerError as e:
                    errors.append(str(e))
            known = {(kind, name) for kind, name, _, _ in contents}
            unknown = sorted(set(MARKER.findall(old)) - known)
            if unknown:
                errors.append(
                    f'{path}: has the markers of blocks that do not go there: '
                    + ', '.join(f'{kind}:{name}' for kind, name in unknown)
                    + ' (the blocks are mmdet_pep_tools.tables.TABLES and '
                    f'the tables of {rep.REPORTED_FILE})')
            built[path] = (old, new)
    if errors:
        raise MarkerError('\n'.join(errors))
    return built


def diff(path: str, old: Optional[str], new: str) -> str:
    """A unified diff of a generated file against what is built."""
    return ''.join(
        difflib.unified_diff((old or '').splitlines(keepends=True),
                             new.splitlines(keepends=True),
                             f'{path} (committed)', f'{path} (built)'))


def write(root: str, built: Dict[str, Tuple]) -> List[str]:
    """Write the files whose text changed; returns their paths."""
    changed = []
    for path, (old, new) in built.items():
        if old != new:
            full = osp.join(root, path)
            os.makedirs(osp.dirname(full) or '.', exist_ok=True)
            with open(full, 'w') as f:
                f.write(new)
            changed.append(path)
    return changed
