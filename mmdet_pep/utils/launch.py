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
