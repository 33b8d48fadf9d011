"""The model package is the model: what only the tools use lives in the
sibling package mmdet_pep_tools, and the model package never imports it."""
import ast
import os
import os.path as osp
import subprocess
import sys

from pep_testing import ROOT

# The tools' library, moved out of mmdet_pep/utils/.
MOVED = ('benchmark', 'results', 'provenance', 'config_rewrites', 'launch')


def _modules(package: str) -> dict:
    """``{dotted module name: path}`` of every .py file of ``package``."""
    found = {}
    for folder, _, files in os.walk(osp.join(ROOT, package)):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(folder, file)
                name = osp.relpath(path, ROOT)[:-3].replace(osp.sep, '.')
                found[name[:-len('.__init__')] if name.endswith(
                    '.__init__') else name] = path
    return found


def test_the_tools_library_left_the_model_package():
    for name in MOVED:
        assert not osp.exists(osp.join(ROOT, 'mmdet_pep', 'utils',
                                       f'{name}.py'))
        assert osp.isfile(osp.join(ROOT, 'mmdet_pep_tools', f'{name}.py'))


def test_the_package_loads_every_module_of_its_own():
    """``import mmdet_pep`` (what a config's custom_imports runs) loads
    every module of the package, so none of them is there for the tools
    alone; and it loads nothing of mmdet_pep_tools. The one exception is
    ``mmdet_pep.deploy`` (ONNX export and the onnxruntime inferencer), a
    user-facing API that registers nothing and is imported where used."""
    code = ('import sys, mmdet_pep; print("\\n".join(m for m in sys.modules '
            'if m.split(".")[0] in ("mmdet_pep", "mmdet_pep_tools")))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    own = {m for m in _modules('mmdet_pep')
           if not m.startswith('mmdet_pep.deploy')}
    assert sorted(own - loaded) == []
    assert not any(m.startswith('mmdet_pep.deploy') for m in loaded)
    assert not any(m.startswith('mmdet_pep_tools') for m in loaded)


def test_no_model_module_imports_the_tools():
    for name, path in _modules('mmdet_pep').items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or '']
            else:
                continue
            assert not any(n.split('.')[0] == 'mmdet_pep_tools'
                           for n in names), f'{name} imports {names}'
