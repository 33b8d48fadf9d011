"""tools/analysis_tools/mutation_summary.py on a hand-made mutmut run: what
counts as killed, equivalent, device-only (a survivor) or unargued, and
arguments that name no mutant of the run."""
import os.path as osp
import sys

import pytest

from pep_testing import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
import mutation_summary as tool  # noqa: E402

HEAD = 'mmdet_pep.models.dense_heads.a_head.'
LAYER = 'mmdet_pep.models.layers.b_layer.'
RESULTS = {
    HEAD + 'x_f__mutmut_1': 'killed',
    HEAD + 'x_f__mutmut_2': 'timeout',
    HEAD + 'x_f__mutmut_3': 'survived',  # argued equivalent
    HEAD + 'x_f__mutmut_4': 'survived',  # device only
    LAYER + 'xǁYǁg__mutmut_1': 'killed',
    LAYER + 'xǁYǁg__mutmut_2': 'survived',  # device only
}


def fake_mutmut(results):

    def run(*args):
        if args[0] == 'results':
            return ''.join(f'    {k}: {v}\n' for k, v in results.items())
        assert args[0] == 'show'
        return f'--- a\n+++ b\n-old {args[1]}\n+new {args[1]}\n'

    return run


@pytest.fixture
def docs(tmp_path, monkeypatch):
    monkeypatch.setattr(tool, 'DOCS', str(tmp_path))
    return tmp_path


def summarise(docs, monkeypatch, arguments, results=RESULTS, target=0.5):
    (docs / 'equivalent.txt').write_text('# comment\n' + ''.join(
        f'{name} {reason}\n' for name, reason in arguments.items()))
    monkeypatch.setattr(tool, 'mutmut', fake_mutmut(results))
    code = tool.main(['--target', str(target)])
    return code, (docs / 'README.md').read_text()


def row(text, path):
    return next(line for line in text.splitlines()
                if line.startswith(f'| {path} |'))


ARGUED = {
    HEAD + 'x_f__mutmut_3': 'the same einsum in capitals',
    HEAD + 'x_f__mutmut_4': 'device: creates the tensor on the default '
    'device',
    LAYER + 'xǁYǁg__mutmut_2': 'device: moves the tensor to the default '
    'device',
}


def test_device_only_survivors_count_against_the_kill_rate(
        docs, monkeypatch):
    code, text = summarise(docs, monkeypatch, ARGUED)
    assert code == 0
    # file | mutants | killed | survived | device only | equivalent |
    # not run | kill rate: 2 killed of 4 - 1 equivalent = 3.
    assert row(text, 'mmdet_pep/models/dense_heads/a_head.py') == (
        '| mmdet_pep/models/dense_heads/a_head.py | 4 | 2 | 0 | 1 | 1 | 0 '
        '| 66.7% |')
    assert row(text, 'mmdet_pep/models/layers/b_layer.py') == (
        '| mmdet_pep/models/layers/b_layer.py | 2 | 1 | 0 | 1 | 0 | 0 '
        '| 50.0% |')
    # 3 killed of 6 - 1 equivalent.
    assert '| **all** | 6 | 3 | 0 | 2 | 1 | 0 | 60.0% |' in text
    assert '**60.0%**' in text
    # Every survivor is listed with its change and its argument.
    assert '`- old ' + HEAD + 'x_f__mutmut_4 / + new ' + HEAD in text
    assert 'device: creates the tensor on the default device' in text
    assert 'Arguments without a mutant' not in text


def test_the_target_counts_device_only_survivors(docs, monkeypatch):
    # 60 % with them in the denominator, 75 % if they were equivalent.
    code, _ = summarise(docs, monkeypatch, ARGUED, target=0.7)
    assert code == 1


def test_unargued_survivors_and_stale_arguments_fail(docs, monkeypatch,
                                                     capsys):
    arguments = dict(ARGUED)
    del arguments[HEAD + 'x_f__mutmut_3']
    code, text = summarise(docs, monkeypatch, arguments)
    assert code == 1
    assert '**not argued: add a test**' in text
    assert row(text, 'mmdet_pep/models/dense_heads/a_head.py').startswith(
        '| mmdet_pep/models/dense_heads/a_head.py | 4 | 2 | 1 | 1 | 0 |')

    # An argument whose mutant the run no longer has (the code changed).
    arguments = dict(ARGUED, **{HEAD + 'x_gone__mutmut_9': 'zero either way'})
    code, text = summarise(docs, monkeypatch, arguments)
    assert code == 1
    assert '## Arguments without a mutant' in text
    assert f'- `{HEAD}x_gone__mutmut_9`' in text
    assert '1 arguments in equivalent.txt name no mutant' in (
        capsys.readouterr().out)


def test_the_shipped_arguments_mark_every_device_survivor():
    """equivalent.txt marks the mutants that only a GPU would kill as
    ``device:`` (counted as survivors), not as equivalent."""
    reasons = tool.load_equivalent(
        osp.join(ROOT, 'docs', 'mutation', 'equivalent.txt'))
    device = [r for r in reasons.values() if tool.is_device_only(r)]
    assert len(device) == 79
    assert not [
        r for r in reasons.values()
        if 'default device' in r and not tool.is_device_only(r)
    ]
