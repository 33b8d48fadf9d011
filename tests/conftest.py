"""Makes tests/pep_testing.py importable and registers mmdet_pep."""
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(__file__))


@pytest.fixture(autouse=True)
def _register():
    import mmdet_pep  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True, scope='session')
def _one_thread():
    """One intra-op thread: the tests' tensors are tiny, and on a busy
    2-core machine two OpenMP threads contend and a step gets up to 30x
    slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
