"""``import mmdet_pep`` changes nothing in mmengine, mmdet or torch; it only
adds its own modules to mmdet's registries. The checkpoint changes happen
only when a program opts in with ``register_checkpoint_safe_globals()``.

Each check runs in a fresh interpreter: the test session has imported
mmdet_pep long ago, and other tests opt in.
"""
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import torch

from mmdet_pep import register_checkpoint_safe_globals
from mmdet_pep.utils import (CHECKPOINT_SAFE_GLOBALS,
                             load_checkpoint_weights_only)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Records, before and after ``import mmdet_pep``, what the import could
# patch: every attribute of the mmengine/mmdet/mmcv classes that mmdet_pep
# builds on or touches in its opt-in, the module globals of
# mmengine.runner.checkpoint, torch.serialization and numpy, mmengine's
# checkpoint loaders, torch's weights-only allow-list, every entry of
# every mmengine and mmdet registry, and the warning filters.
SNAPSHOT = '''
import types
import warnings

import numpy as np
import torch
import torch.serialization
import mmengine.registry
import mmengine.runner.checkpoint as mmengine_checkpoint
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.registry import Registry
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

import mmdet.registry
from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.engine.hooks import CheckInvalidLossHook, NumClassCheckHook
from mmdet.evaluation.metrics import CocoMetric, YouTubeVISMetric
from mmdet.utils import register_all_modules

register_all_modules(init_default_scope=False)

CLASSES = (HistoryBuffer, MessageHub, CheckpointLoader, Runner, CocoDataset,
           COCO, LoadImageFromFile, NumClassCheckHook, CheckInvalidLossHook,
           CocoMetric, YouTubeVISMetric)
MODULES = (mmengine_checkpoint, torch.serialization, np)


def flat(namespace):
    """Attributes (submodules left out: importing adds them); dict values
    also by their items, so that an entry put into them shows."""
    out = {}
    for key, value in namespace.items():
        if isinstance(value, types.ModuleType):
            continue
        out[key] = value
        if isinstance(value, dict):
            for k, v in list(value.items()):
                out[(key, k)] = v
    return out


def snapshot():
    registries = {}
    for module in (mmengine.registry, mmdet.registry):
        for name, registry in vars(module).items():
            if isinstance(registry, Registry):
                registries[f'{module.__name__}.{name}'] = dict(
                    registry.module_dict)
    return dict(
        classes={c.__qualname__: flat(vars(c)) for c in CLASSES},
        modules={m.__name__: flat(vars(m)) for m in MODULES},
        schemes=dict(CheckpointLoader._schemes),
        safe_globals=set(torch.serialization.get_safe_globals()),
        registries=registries,
        warning_filters=list(warnings.filters))


def changes(before, after):
    """What differs; registries may only gain entries."""
    found = []
    for part in ('classes', 'modules'):
        for owner, attrs in before[part].items():
            now = after[part][owner]
            for key in attrs.keys() | now.keys():
                if key not in now or key not in attrs or \\
                        now[key] is not attrs[key]:
                    found.append(f'{owner}.{key}')
    for key in before['schemes'].keys() | after['schemes'].keys():
        if before['schemes'].get(key) is not after['schemes'].get(key):
            found.append(f'CheckpointLoader._schemes[{key!r}]')
    if before['safe_globals'] != after['safe_globals']:
        found.append('torch.serialization safe globals')
    for name, entries in before['registries'].items():
        now = after['registries'][name]
        found += [f'{name}[{key!r}]' for key, module in entries.items()
                  if now.get(key) is not module]
    if before['warning_filters'] != after['warning_filters']:
        found.append('warnings.filters')
    return found
'''


def run_python(code):
    """Run ``SNAPSHOT`` + ``code`` in a fresh interpreter; its stdout."""
    proc = subprocess.run(
        [sys.executable, '-c', SNAPSHOT + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_changes_nothing_and_the_opt_in_does():
    out = run_python('''
        before = snapshot()
        import mmdet_pep
        after = snapshot()
        assert not np.__dict__.get('float'), 'np.float'
        print('import:', changes(before, after))
        # It did register its own modules.
        new = {key for name, entries in after['registries'].items()
               for key in entries.keys() - before['registries'][name].keys()}
        assert {'PEP', 'CheckedCocoDataset', 'SafeCheckpointHook'} <= new

        from mmdet_pep.utils import checkpoint
        mmdet_pep.register_checkpoint_safe_globals()
        opted = snapshot()
        mmdet_pep.register_checkpoint_safe_globals()  # idempotent
        assert changes(opted, snapshot()) == []
        assert (HistoryBuffer.__getstate__ is
                checkpoint._history_buffer_getstate)
        assert CheckpointLoader._schemes[''] is checkpoint._load_from_local
        allowed = torch.serialization.get_safe_globals()
        assert all(g in allowed for g in checkpoint.CHECKPOINT_SAFE_GLOBALS)
        print('opt-in:', sorted(map(str, changes(after, opted))))
    ''')
    lines = dict(line.split(': ', 1) for line in out.splitlines())
    assert lines['import'] == '[]'
    # register_scheme rebuilds the ``_schemes`` dict, hence three entries.
    assert lines['opt-in'] == str(
        sorted([
            "CheckpointLoader._schemes['']", 'CheckpointLoader._schemes',
            "CheckpointLoader.('_schemes', '')", 'HistoryBuffer.__getstate__',
            'torch.serialization safe globals'
        ]))


def test_safe_loader_works_without_the_opt_in(tmp_path):
    """``load_checkpoint_weights_only`` allows the checkpoint globals for
    its own call only."""
    path = str(tmp_path / 'ckpt.pth')
    out = run_python(f'''
        import collections
        import pickle

        import mmdet_pep
        from mmdet_pep.utils import load_checkpoint_weights_only
        torch.save(dict(a=np.arange(3), c=collections.Counter('aab')),
                   {path!r})
        try:  # numpy is not allowed in this process
            torch.load({path!r}, weights_only=True)
            raise AssertionError('loaded without the allow-list')
        except pickle.UnpicklingError:
            pass
        before = snapshot()
        ckpt = load_checkpoint_weights_only({path!r})
        assert ckpt['a'].tolist() == [0, 1, 2] and ckpt['c']['a'] == 2
        print('load:', changes(before, snapshot()))
    ''')
    assert out == 'load: []\n'


def test_safe_loader_keeps_the_opt_in(tmp_path):
    """A load after the opt-in leaves the process-wide allow-list as it
    was (``torch.serialization.safe_globals`` removes what it added)."""
    register_checkpoint_safe_globals()
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(a=np.arange(3)), path)
    assert load_checkpoint_weights_only(path)['a'].tolist() == [0, 1, 2]
    allowed = torch.serialization.get_safe_globals()
    assert all(g in allowed for g in CHECKPOINT_SAFE_GLOBALS)
    assert torch.load(path, weights_only=True)['a'].tolist() == [0, 1, 2]
