"""The README's comparison of PEP with SOLOv2 and CondInst is the table
that ``compare.py`` built from the committed result files
(docs/results/screen_600it/README.md), copied, not typed: every mean ± std
it shows is the built table's."""
import itertools
import os.path as osp

import pytest

from pep_testing import ROOT

SECTION = '### PEP against SOLOv2 and CondInst'
# README row label (its start) -> the model's name in the result files.
MODELS = {'PEP (': 'PEP-relc-dx-dp-px16', 'CondInst': 'CondInst',
          'SOLOv2': 'SOLOv2'}
# README columns -> built-table columns (both after model and data).
COLUMNS = {'runs': 'runs', 'mask AP': 'mask AP', 'box AP': 'box AP',
           'crowded mask AP': 'crowded AP',
           'crowded R@0.5': 'crowded R@0.5',
           'isolated mask AP': 'isolated AP', 'dup / img': 'dup/img'}


def table_rows(text):
    """Header and cell rows of the first markdown table in ``text`` (its
    lines up to the first that is not a table line)."""
    lines = itertools.dropwhile(lambda line: not line.startswith('|'),
                                text.splitlines())
    table = itertools.takewhile(lambda line: line.startswith('|'), lines)
    cells = [[c.strip() for c in line.strip('|').split('|')]
             for line in table]
    return cells[0], cells[2:]


def readme_rows():
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text[text.index(SECTION):]
    header, rows = table_rows(section)
    out, model = {}, None
    for row in rows:
        if row[0]:
            model = next(name for start, name in MODELS.items()
                         if row[0].startswith(start))
        out[model, row[1]] = {col: row[header.index(col)].strip('*')
                              for col in COLUMNS}
    return out


def built_rows():
    text = open(osp.join(ROOT, 'docs', 'results', 'screen_600it',
                         'README.md')).read()
    header, rows = table_rows(text)
    return {(row[0], row[1]): {col: row[header.index(built)]
                               for col, built in COLUMNS.items()}
            for row in rows}


@pytest.mark.parametrize('model', sorted(MODELS.values()))
def test_readme_comparison_is_the_built_table(model):
    readme, built = readme_rows(), built_rows()
    shown = {k: v for k, v in readme.items() if k[0] == model}
    assert {data for _, data in shown} == {'all', 'demo', 'dense'}
    for key, cells in shown.items():
        for col, value in cells.items():
            if value == '(no boxes)':  # SOLOv2: the built table's 0.0
                assert built[key][col].startswith('0.0'), key
                continue
            assert value == built[key][col], (key, col)
