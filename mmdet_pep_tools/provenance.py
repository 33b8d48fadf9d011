"""Where a training result comes from: the config and the code behind it.

``compare.py --seeds`` keeps one small result file per finished training
run and skips a run whose file exists for the same config and the same code.
"The same code" is the last git commit that changed one of the project's
source files the config uses: the modules its ``type`` keys name (model,
data pipeline, data set, evaluator, hooks), found in mmdet's registries, and
every ``mmdet_pep`` module those import, transitively. A change elsewhere
(a tool, a test, another method's head) leaves the results valid; a change
to PEP's head makes PEP's results stale but not SOLOv2's. mmdet's own code
is pinned by its version, which the result file records too.
"""
import ast
import hashlib
import inspect
import json
import os
import os.path as osp
import subprocess
from typing import Iterator, List, Optional, Set

from mmengine.config import Config

import mmdet_pep

PACKAGE_DIR = osp.dirname(osp.abspath(mmdet_pep.__file__))
# Settings that name where a run writes or how it is launched, not what it
# trains: two runs differing only in them are the same experiment.
VOLATILE_KEYS = ('work_dir', 'experiment_name', 'randomness', 'load_from',
                 'resume', 'launcher', 'visualizer', 'log_processor',
                 'default_hooks', 'env_cfg', 'log_level')
# Settings that only evaluate a trained model (with ``model.test_cfg``): two
# runs differing only in them train the same weights.
EVAL_KEYS = ('test_dataloader', 'test_evaluator', 'test_cfg')


def _types(node) -> Iterator[str]:
    """Every string ``type`` value in a nested config."""
    if isinstance(node, dict):
        value = node.get('type')
        if isinstance(value, str):
            yield value
        for item in node.values():
            yield from _types(item)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _types(item)


def _registries() -> list:
    from mmdet import registry
    from mmengine.registry import Registry
    return [
        obj for obj in vars(registry).values() if isinstance(obj, Registry)
    ]


def _module_file(name: str) -> Optional[str]:
    """The file of the ``mmdet_pep`` module or package ``name``."""
    parts = name.split('.')
    if parts[0] != 'mmdet_pep':
        return None
    base = osp.join(PACKAGE_DIR, *parts[1:])
    for path in (base + '.py', osp.join(base, '__init__.py')):
        if osp.isfile(path):
            return path
    return None


def _package_of(path: str) -> str:
    """Dotted package of a file inside ``mmdet_pep``."""
    rel = osp.relpath(osp.dirname(path), osp.dirname(PACKAGE_DIR))
    return rel.replace(osp.sep, '.')


def _imported_files(path: str) -> Set[str]:
    """``mmdet_pep`` files that ``path`` imports (anywhere in it)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A file's package is its folder, for __init__.py as well:
                # level 1 is that package, each further level its parent.
                package = _package_of(path).split('.')
                base = '.'.join(package[:len(package) - node.level + 1])
                module = f'{base}.{node.module}' if node.module else base
            else:
                module = node.module or ''
            names.append(module)
            # ``from pkg import submodule`` imports a module too.
            names += [f'{module}.{alias.name}' for alias in node.names]
    files = {_module_file(name) for name in names}
    files.discard(None)
    return files


def code_files(cfg: Config) -> List[str]:
    """The ``mmdet_pep`` source files behind the modules ``cfg`` builds.

    Returns:
        list[str]: Paths relative to the repository root, sorted.
    """
    registries = _registries()
    files = set()
    for name in set(_types(cfg.to_dict())):
        for registry in registries:
            obj = registry.get(name)
            if obj is None:
                continue
            source = inspect.getsourcefile(obj)
            if source and osp.abspath(source).startswith(PACKAGE_DIR):
                files.add(osp.abspath(source))
    todo = list(files)
    while todo:
        for found in _imported_files(todo.pop()) - files:
            files.add(found)
            todo.append(found)
    root = osp.dirname(PACKAGE_DIR)
    return sorted(osp.relpath(path, root) for path in files)


def training_code_files(cfg: Config) -> List[str]:
    """:func:`code_files` of what trains: ``cfg`` without its test and val
    loaders and evaluators (and ``test_cfg``/``val_cfg``) and without
    ``model.tracker`` (a video model's tracker has no weights and runs at
    test time only), so a change to a metric or a tracker re-tests a
    finished training instead of repeating it."""
    content = {
        k: v
        for k, v in cfg.to_dict().items() if k not in EVAL_KEYS +
        ('val_dataloader', 'val_evaluator', 'val_cfg')
    }
    if isinstance(content.get('model'), dict):
        content['model'] = {
            k: v
            for k, v in content['model'].items() if k != 'tracker'
        }
    return code_files(Config(content))


def deploy_code_files(cfg: Config) -> List[str]:
    """:func:`code_files` of ``cfg`` and the files of ``mmdet_pep.deploy``
    an exported graph of ``cfg`` is built from: the package's own modules
    and the post-processing module of ``cfg``'s head (not the other heads')."""
    from mmdet_pep.deploy.heads import _ENTRIES
    root = osp.dirname(PACKAGE_DIR)
    folder = osp.join(PACKAGE_DIR, 'deploy')
    files = [
        osp.join(folder, name) for name in sorted(os.listdir(folder))
        if name.endswith('.py')
    ] + [osp.join(folder, 'heads', '__init__.py')]
    model = cfg.model
    head = (model.get('mask_head') or model.get('bbox_head') or {}).get('type')
    if head in _ENTRIES:
        module = _ENTRIES[head].split(':')[0]
        files.append(osp.join(folder, 'heads', f'{module}.py'))
    return code_files(cfg) + sorted(osp.relpath(f, root) for f in files)


def code_commit(files: List[str], root: str) -> str:
    """The last commit of ``root``'s git history that changed ``files``.

    ``<sha>+dirty`` when one of them differs from that commit in the work
    tree, so a result of uncommitted code never passes for a committed one;
    ``unknown`` outside a git work tree.
    """
    def git(*args):
        return subprocess.run(['git', '-C', root, *args],
                              capture_output=True,
                              text=True)

    log = git('log', '-1', '--format=%H', '--', *files)
    if log.returncode != 0 or not log.stdout.strip():
        return 'unknown'
    dirty = git('status', '--porcelain', '--', *files).stdout.strip()
    return log.stdout.strip() + ('+dirty' if dirty else '')


def config_digest(cfg: Config) -> str:
    """SHA-256 of what ``cfg`` trains and evaluates.

    The config as a dict, without the keys of :data:`VOLATILE_KEYS`, in
    canonical JSON (sorted keys; tuples as lists; other objects by repr).
    """
    content = {
        k: v
        for k, v in cfg.to_dict().items() if k not in VOLATILE_KEYS
    }
    return _digest(content)


def training_digest(cfg: Config) -> str:
    """SHA-256 of what ``cfg`` trains: :func:`config_digest` without the
    settings that only evaluate (:data:`EVAL_KEYS` and ``model.test_cfg``).

    Two configs with one training digest train the same weights from the
    same seed, so the finished checkpoint of one is tested for the other
    instead of being trained again. Validation settings stay in: they run
    during training.
    """
    content = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in VOLATILE_KEYS + EVAL_KEYS
    }
    if isinstance(content.get('model'), dict):
        content['model'] = {
            k: v
            for k, v in content['model'].items() if k != 'test_cfg'
        }
    return _digest(content)


def model_digest(cfg: Config) -> str:
    """SHA-256 of the model ``cfg`` builds, ``model.test_cfg`` included:
    what a latency measurement depends on besides the code."""
    return _digest(dict(model=cfg.to_dict().get('model')))


def _digest(content: dict) -> str:
    """SHA-256 of ``content`` in canonical JSON (sorted keys; tuples as
    lists; other objects by repr)."""
    text = json.dumps(content, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
