"""tools/setup_env.sh's helpers, run through bash with fake commands, and
the requirement files it reads.

The script defines its functions and returns when it is sourced, so the
tests exercise the very code a fresh install runs: the heartbeat that shows
progress while mmcv builds (~16 minutes), the filter of pip's build output,
the PATH that lets torch's cpp_extension find the venv's ninja, and the
look-up of versions in requirements/*.txt.
"""
import os
import os.path as osp
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = 'tools/setup_env.sh'
HEARTBEAT = re.compile(r'^    \.\.\. fake build: \d+ min \d\d s elapsed$')


def bash(code, *args, heartbeat_s='1', env=None, timeout=60):
    """Runs ``code`` in bash after sourcing the script, from the repository
    root, with ``set -euo pipefail`` in force as in the script."""
    env = dict(os.environ if env is None else env,
               PEP_HEARTBEAT_S=heartbeat_s)
    return subprocess.run(
        ['/bin/bash', '-c', f'source {SCRIPT}\n{code}', 'bash', *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def beats(stdout):
    return [line for line in stdout.splitlines() if HEARTBEAT.match(line)]


def test_heartbeat_while_a_command_runs_then_stops():
    # The traps must be back to what they were before (a caller may run
    # this with signals ignored, e.g. SIGINT in a background job).
    proc = bash('before="$(trap -p EXIT INT)"\n'
                'with_heartbeat "fake build" sleep 3.5\n'
                'echo "status $? pid [$HEARTBEAT_PID] traps restored '
                '[$([ "$(trap -p EXIT INT)" = "$before" ] && echo yes)]"\n'
                'sleep 2.5; echo after')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # 1 s interval, 3.5 s command: at most three or four beats, all before
    # it ended (a loaded machine may delay some, never add any).
    assert 1 <= len(beats(proc.stdout)) <= 4, proc.stdout
    assert lines.index('status 0 pid [] traps restored [yes]') == \
        len(lines) - 2
    assert lines[-1] == 'after'  # and no beat in the 2.5 s after the end


def test_failing_command_status_propagates_and_stops_the_script():
    """Under ``set -e`` (as in setup_env.sh) a failed build ends the script
    with the build's status; the heartbeat stops with it."""
    proc = bash('with_heartbeat "fake build" bash -c "sleep 2.5; exit 7"\n'
                'echo "not reached"')
    assert proc.returncode == 7
    assert beats(proc.stdout), proc.stdout
    assert 'not reached' not in proc.stdout
    # Tested in a condition, the status is returned.
    proc = bash('with_heartbeat "fake build" false || echo "status $?"')
    assert proc.returncode == 0 and proc.stdout.strip() == 'status 1'


def test_filtered_build_keeps_progress_and_the_status():
    """The mmcv build line: ``with_heartbeat LABEL filtered $PIP -v ...``:
    ninja's ``[n/m]`` lines shortened to the source file, other output
    dropped, heartbeat lines kept, pip's exit status through the pipe."""
    fake_pip = ('echo "[1/2] c++ -MMD -MF a.o.d -I/inc -c /src/nms.cpp -o a.o"; '
                'echo "noise"; sleep 2.5; echo "error: x.cpp: bad" >&2; '
                'echo "[2/2] c++ -c /src/roi_align.cpp -o b.o"; exit 3')
    proc = bash('with_heartbeat "fake build" filtered bash -c "$1"', fake_pip)
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert [line for line in lines if not HEARTBEAT.match(line)] == [
        '    [1/2] /src/nms.cpp', 'error: x.cpp: bad', '    [2/2] /src/roi_align.cpp'
    ]
    assert beats(proc.stdout)
    # Output without a single progress line is no failure (grep finds none).
    proc = bash('filtered echo "nothing to keep"; echo "status $?"')
    assert proc.stdout == 'status 0\n'


def test_heartbeat_does_not_hold_the_output_pipe():
    """``make test | tee log`` must end when the script ends, not when the
    heartbeat's last ``sleep`` does (here 30 s)."""
    proc = bash('with_heartbeat "fake build" true; echo done',
                heartbeat_s='30', timeout=15)
    assert proc.stdout == 'done\n'


def test_venv_bin_first_on_path(tmp_path):
    """A relative venv's bin goes first on PATH as an absolute path (pip
    builds in a temporary directory), ahead of e.g. /usr/bin/ninja."""
    (tmp_path / 'venv' / 'bin').mkdir(parents=True)
    ninja = tmp_path / 'venv' / 'bin' / 'ninja'
    ninja.write_text('#!/bin/sh\necho venv ninja\n')
    ninja.chmod(0o755)
    proc = bash('cd "$1"; use_venv_bin venv; cd /; ninja', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'venv ninja\n'


@pytest.mark.skipif(not osp.isfile(osp.join(sys.prefix, 'bin', 'ninja')),
                    reason='no ninja in this venv (tools/setup_env.sh '
                    'installs it)')
def test_torch_finds_the_venv_ninja():
    """What the mmcv build needs: with nothing but the venv's bin on PATH,
    torch's cpp_extension sees ninja (without it, it does not)."""
    check = ('"$1/bin/python" -c "from torch.utils.cpp_extension import '
             'is_ninja_available as f; print(f())"')
    env = dict(os.environ, PATH='/nonexistent')
    proc = bash(check, sys.prefix, env=env)
    assert proc.stdout.strip() == 'False', proc.stderr
    proc = bash(f'use_venv_bin "$1"; {check}', sys.prefix, env=env)
    assert proc.stdout.strip() == 'True', proc.stderr


def test_req_reads_the_split_requirement_files():
    proc = bash('for name in torch mmcv mmdet openmim setuptools mutmut; do '
                'req "$name"; done; reqs runtime torch mmcv mmdet')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:6] == [
        'torch==2.13.0', 'mmcv==2.1.0', 'mmdet==3.3.0', 'openmim==0.3.9',
        'setuptools>=77.0.3,<82', 'mutmut==3.8.1'
    ]
    rest = [Requirement(line).name for line in lines[6:]]
    assert 'mmengine' in rest and 'numpy' in rest
    assert not {'torch', 'mmcv', 'mmdet'} & set(rest)
    # A package no file names is an error, not an empty version.
    assert bash('req no-such-package').returncode != 0


def read_requirements(name):
    reqs = []
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                reqs.append(Requirement(line))
    return reqs


def test_requirements_txt_includes_the_split_files():
    with open(osp.join(ROOT, 'requirements.txt')) as f:
        included = [line.split()[1] for line in f if line.startswith('-r ')]
    assert sorted(included) == [
        'requirements/build.txt', 'requirements/deploy.txt',
        'requirements/optional.txt', 'requirements/runtime.txt',
        'requirements/tests.txt'
    ]


@pytest.mark.parametrize('name',
                         ['runtime', 'optional', 'tests', 'mutation', 'deploy'])
def test_pyproject_matches_the_requirement_files(name):
    """pyproject's dependencies (runtime.txt) and optional-dependencies name
    the same packages, and every version the files pin is allowed there."""
    with open(osp.join(ROOT, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)['project']
    declared = (project['dependencies'] if name == 'runtime' else
                project['optional-dependencies'][name])
    declared = {r.name.lower(): r for r in map(Requirement, declared)}
    reqs = read_requirements(name)
    assert sorted(r.name.lower() for r in reqs) == sorted(declared)
    for req in reqs:
        for spec in req.specifier:
            if spec.operator == '==':
                assert declared[req.name.lower()].specifier.contains(
                    spec.version, prereleases=True), (req, declared)
            else:
                # a range: the same bound in pyproject
                assert spec in set(declared[req.name.lower()].specifier), req


def test_build_requirements_match_the_build_system():
    with open(osp.join(ROOT, 'pyproject.toml'), 'rb') as f:
        requires = tomllib.load(f)['build-system']['requires']
    build = {r.name: str(r.specifier) for r in read_requirements('build')}
    for req in map(Requirement, requires):
        assert build[req.name] == str(req.specifier)
    assert 'ninja' in build
