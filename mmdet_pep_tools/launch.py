"""Launcher helpers shared by tools/train.py and tools/test.py."""
from mmengine.config import Config
from mmengine.logging import print_log


def fit_dist_backend(cfg: Config) -> Config:
    """Use gloo for distributed runs on machines without CUDA.

    mmdet's default runtime asks for NCCL, which exists only on GPUs; a
    CPU run launched with ``tools/dist_train.sh`` would fail at start-up.
    An explicitly configured non-NCCL backend is left untouched.

    Args:
        cfg (Config): A config with ``launcher`` set.

    Returns:
        Config: The same config, changed in place.
    """
    import torch
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return cfg
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('No CUDA device: using the gloo backend instead of nccl.',
                  logger='current')
        dist_cfg['backend'] = 'gloo'
    return cfg


def join_cpu_process_group(cfg: Config) -> Config:
    """Start a gloo process group for ``--launcher pytorch`` without CUDA.

    mmengine's pytorch launcher calls ``torch.cuda.set_device``, which CPU
    builds of torch lack; once a group exists the Runner skips its own
    set-up. DDP refuses ``device_ids`` for a CPU module, and the Runner
    passes them unless the wrapper config sets them.

    Args:
        cfg (Config): A config with ``launcher`` set, after
            :func:`fit_dist_backend`.

    Returns:
        Config: The same config, changed in place.
    """
    import torch
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return cfg
    torch.distributed.init_process_group(backend=cfg.env_cfg.dist_cfg.backend)
    cfg.setdefault(
        'model_wrapper_cfg',
        dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False)))
    cfg.model_wrapper_cfg.setdefault('device_ids', None)
    return cfg


def leave_process_group() -> None:
    """Wait for every rank, then destroy the default process group, if
    there is one.

    Called when a launched tool has finished: gloo's worker threads are then
    joined before the interpreter exits. Left to exit, a rank sometimes
    aborted after a finished 2-process CPU test ("terminate called without
    an active exception", SIGABRT), failing the launch; destroying the
    group without the barrier still let rank 0 abort, once in three CI
    runs, right after the last validation while rank 1 was still in it.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
