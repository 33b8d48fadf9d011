"""Makes tests/pep_testing.py importable and registers mmdet_pep."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))


@pytest.fixture(autouse=True)
def _register():
    import mmdet_pep  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
