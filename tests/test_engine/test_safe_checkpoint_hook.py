"""SafeCheckpointHook: a config's opt-in to weights-only checkpoints, for
runs that mmdet's own scripts start (`mim train/test mmdet CONFIG`)."""
import subprocess
import sys

SCRIPT = """
from mmengine.logging import HistoryBuffer
import mmdet_pep  # noqa: F401
from mmdet.registry import HOOKS
before = HistoryBuffer.__getstate__
hook = HOOKS.build(dict(type='SafeCheckpointHook'))
assert HistoryBuffer.__getstate__ is before, 'building the hook opted in'
hook.before_run(None)
after = HistoryBuffer.__getstate__
assert after is not before, 'before_run did not opt in'
hook.before_run(None)
assert HistoryBuffer.__getstate__ is after, 'a second call changed more'
print(hook.priority)
"""


def test_the_hook_opts_in_before_the_run_and_only_then():
    """Importing the package or building the hook changes nothing; the
    run's start does, once (a fresh process: the opt-in is process-wide)."""
    out = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    # First among the hooks, before load_from/resume load a checkpoint.
    assert out.stdout.strip().splitlines()[-1] == 'VERY_HIGH'
