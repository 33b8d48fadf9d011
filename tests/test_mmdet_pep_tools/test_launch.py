import socket

import pytest
import torch
from mmengine.config import Config

from mmdet_pep_tools.launch import fit_dist_backend, join_cpu_process_group


def free_port():
    """A port the OS has just handed out (bind to port 0), not a fixed one
    that another test run or service on this machine may hold."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


cpu_only = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the CPU fallback only acts without CUDA')


@cpu_only
def test_nccl_becomes_gloo_without_cuda():
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert fit_dist_backend(cfg).env_cfg.dist_cfg.backend == 'gloo'


@cpu_only
def test_explicit_backend_and_single_process_are_left_alone():
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='mpi'))))
    assert fit_dist_backend(cfg).env_cfg.dist_cfg.backend == 'mpi'
    cfg = Config(dict(launcher='none',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert fit_dist_backend(cfg).env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in join_cpu_process_group(cfg)


@cpu_only
def test_join_cpu_process_group_single_rank(monkeypatch, tmp_path):
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    try:
        join_cpu_process_group(cfg)
        assert torch.distributed.is_initialized()
        assert torch.distributed.get_backend() == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_leave_process_group(tmp_path):
    import torch.distributed as dist

    from mmdet_pep_tools.launch import leave_process_group
    leave_process_group()  # no group: nothing to do
    assert not dist.is_initialized()
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
        world_size=1)
    try:
        assert dist.is_initialized()
        leave_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
