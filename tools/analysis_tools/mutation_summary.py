"""Summarise a mutmut run of the model code (``make mutation``).

Reads mutmut's results in ``mutants/`` and the one-line arguments for
surviving mutants in ``docs/mutation/equivalent.txt`` (``<mutant name>
<reason>`` per line, ``#`` comments), and writes ``docs/mutation/README.md``:
mutants, killed, survived per file, the kill rate, and every survivor with
its diff and, if argued, why no test here kills it.

Two kinds of argument:

- ``<reason>``: the mutant is equivalent (the same behaviour everywhere);
  it leaves the kill rate's denominator.
- ``device: <reason>``: the mutant behaves the same on the CPU only (e.g.
  a tensor created on the default device instead of its input's), and a
  GPU run would kill it. The tests here run on the CPU, so it is counted
  as a survivor (column ``device only``): it stays in the denominator and
  lowers the kill rate, but needs no new test.

Exits 1 if a survivor is neither killed nor argued, an argument names a
mutant that the run no longer has (code changed: re-argue), or the kill
rate is below ``--target``.

Usage: python tools/analysis_tools/mutation_summary.py [--target 0.85]
"""
import argparse
import collections
import datetime
import os.path as osp
import subprocess
import sys

KILLED = ('killed', 'timeout', 'caught by type check', 'segfault')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = osp.join(ROOT, 'docs', 'mutation')


def mutmut(*args: str) -> str:
    exe = osp.join(osp.dirname(sys.executable), 'mutmut')
    return subprocess.run([exe, *args], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def load_results() -> dict:
    """{mutant name: status} from ``mutmut results --all true``."""
    results = {}
    for line in mutmut('results', '--all', 'true').splitlines():
        name, sep, status = line.strip().rpartition(': ')
        if sep and name:
            results[name] = status
    if not results:
        sys.exit('no mutmut results in mutants/: run `make mutation` first')
    return results


def load_equivalent(path: str) -> dict:
    """{mutant name: reason} of ``equivalent.txt`` (reasons of device-only
    survivors start with ``device:``)."""
    reasons = {}
    if osp.exists(path):
        with open(path) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line:
                    name, _, reason = line.partition(' ')
                    reasons[name] = reason.strip()
    return reasons


def is_device_only(reason: str) -> bool:
    """Whether an argument marks a device-only survivor (``device: ...``)."""
    return reason.startswith('device:')


def source_file(name: str) -> str:
    """``mmdet_pep.models.x.y.xǁClassǁmethod__mutmut_3`` -> ``.../y.py``."""
    module = name.split('.x')[0] if '.xǁ' in name else name.rsplit('.', 1)[0]
    module = module.split('__mutmut')[0]
    if '.x_' in module:
        module = module.split('.x_')[0]
    return module.replace('.', '/') + '.py'


def diff_lines(name: str) -> str:
    """The changed lines of a mutant, ``-old`` / ``+new``, one line."""
    out = mutmut('show', name).splitlines()
    changed = [
        line[0] + ' ' + line[1:].strip() for line in out
        if line[:1] in '+-' and not line.startswith(('+++', '---'))
    ]
    return ' / '.join(changed).replace('|', '\\|')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--target', type=float, default=0.85)
    args = parser.parse_args(argv)

    results = load_results()
    reasons = load_equivalent(osp.join(DOCS, 'equivalent.txt'))
    per_file = collections.defaultdict(collections.Counter)
    survivors = []
    for name, status in sorted(results.items()):
        counts = per_file[source_file(name)]
        counts['mutants'] += 1
        # A mutant whose test process times out or dies (mutmut's
        # "segfault" includes SIGKILL) was detected by the tests.
        if status in KILLED:
            counts['killed'] += 1
        elif status == 'not checked':
            counts['not checked'] += 1
        elif name in reasons and is_device_only(reasons[name]):
            counts['device only'] += 1
            survivors.append((name, status, reasons[name]))
        elif name in reasons:
            counts['equivalent'] += 1
            survivors.append((name, status, reasons[name]))
        else:
            counts['survived'] += 1
            survivors.append((name, status, None))
    stale = sorted(set(reasons) - set(results))
    total = sum(per_file.values(), collections.Counter())
    live = total['mutants'] - total['equivalent'] - total['not checked']
    rate = total['killed'] / max(live, 1)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                            cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()

    lines = [
        '# Mutation testing of the model code', '',
        'Written by `make mutation` (mutmut over `mmdet_pep/models/`, with '
        'the tests in `tests/test_models/`; configuration in '
        '`[tool.mutmut]` of `pyproject.toml`). Do not edit by hand: argue '
        'equivalent mutants in `equivalent.txt` and run '
        '`make mutation-summary`.', '',
        f'Commit `{commit}`, {datetime.date.today()}.', '',
        '| file | mutants | killed | survived | device only | equivalent '
        '| not run | kill rate |', '|---|---|---|---|---|---|---|---|'
    ]
    for path, c in sorted(per_file.items()) + [('**all**', total)]:
        n = c['mutants'] - c['equivalent'] - c['not checked']
        lines.append(f"| {path} | {c['mutants']} | {c['killed']} | "
                     f"{c['survived']} | {c['device only']} | "
                     f"{c['equivalent']} | {c['not checked']} | "
                     f"{c['killed'] / max(n, 1):.1%} |")
    lines += [
        '', f'Kill rate over the non-equivalent mutants that ran: '
        f'**{rate:.1%}** '
        f'(target {args.target:.0%}). The device-only survivors count '
        'against it: they behave the same on the CPU, where these tests '
        'run, and a GPU run would kill them.', ''
    ]
    if stale:
        lines += [
            '## Arguments without a mutant', '',
            'These names in `equivalent.txt` are not mutants of this run (the '
            'code changed): delete or re-argue them.', ''
        ] + [f'- `{name}`' for name in stale] + ['']
    if survivors:
        lines += [
            '## Surviving mutants', '',
            '| mutant | status | change | why no test here kills it |',
            '|---|---|---|---|'
        ]
        for name, status, reason in survivors:
            lines.append(f'| `{name.split(".")[-1]}` ({source_file(name)}) | '
                         f'{status} | `{diff_lines(name)}` | '
                         f'{reason or "**not argued: add a test**"} |')
    with open(osp.join(DOCS, 'README.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines[6:6 + len(per_file) + 5]))
    if stale:
        print(f'{len(stale)} arguments in equivalent.txt name no mutant of '
              'this run: delete or re-argue them')
    unargued = [s for s in survivors if s[2] is None]
    if unargued:
        print(f'{len(unargued)} surviving mutants are neither killed nor '
              'argued equivalent (see docs/mutation/README.md)')
    if total['not checked']:
        print(f"{total['not checked']} mutants were not run: finish "
              '`make mutation` first')
    return int(bool(unargued) or bool(total['not checked']) or bool(stale)
               or rate < args.target)


if __name__ == '__main__':
    sys.exit(main())
