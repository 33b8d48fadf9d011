"""The package's version is the one pip installed it as."""
import os.path as osp
import tomllib
from importlib.metadata import version

import mmdet_pep

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_version_matches_pyproject_and_metadata():
    with open(osp.join(ROOT, 'pyproject.toml'), 'rb') as f:
        declared = tomllib.load(f)['project']['version']
    assert mmdet_pep.__version__ == declared
    # The editable install's metadata: a stale install shows up here.
    assert version('mmdet_pep') == declared
