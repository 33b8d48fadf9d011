"""One checkpoint tested under several inference settings, on the held-out
test split and on the val split, as the protocol tests a training
(``tools/analysis_tools/same_weights.py``; PEP's Tab. 2 switches:
``pep_same_weights.py``).

A setting is a name and ``--cfg-options``-style overrides (``KEY=VALUE``)
of the config; the weights stay the same, so the differences are what the
settings do at inference.
"""
import copy
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction


def parse_settings(items: Sequence[Sequence[str]]) -> Dict[str, dict]:
    """``{name: overrides}`` from ``--setting NAME [KEY=VALUE ...]``
    groups; values are parsed as ``--cfg-options`` parses them.

    Raises:
        ValueError: If a name repeats or an override has no ``=``.
    """
    import argparse
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--o', nargs='*', action=DictAction, default={})
    settings = {}
    for name, *pairs in items:
        if name in settings:
            raise ValueError(f'--setting {name!r} is given twice')
        bad = [p for p in pairs if '=' not in p]
        if bad:
            raise ValueError(f'--setting {name}: {bad} are not KEY=VALUE')
        settings[name] = dict(parser.parse_args(['--o', *pairs]).o or {})
    return settings


def setting_configs(cfg: Config, checkpoint: str, name: str, options: dict,
                    work_dir: str) -> Tuple[Config, Config]:
    """``(test config, val config)`` of one setting: ``cfg`` with
    ``options``, testing ``checkpoint`` on the test and the val split (the
    val split as the protocol tests it)."""
    from .training import on_val_split, without_validation
    one = copy.deepcopy(cfg)
    one.merge_from_dict(options)
    one.work_dir = osp.join(work_dir, name)
    one.experiment_name = f'same_weights_{name}'
    test_cfg = without_validation(one)
    test_cfg.load_from = checkpoint
    return test_cfg, on_val_split(one, checkpoint)


def run_settings(cfg: Config,
                  checkpoint: str,
                  settings: Dict[str, dict],
                  work_dir: str,
                  config: str = '',
                  variant: Optional[str] = None,
                  cfg_options: Optional[dict] = None,
                  make_configs=None) -> dict:
    """Test ``checkpoint`` under every setting on test and val.

    Args:
        make_configs (callable, optional): ``(cfg, checkpoint, name,
            options, work_dir) -> (test config, val config)``;
            :func:`setting_configs` by default.

    Returns:
        dict: ``config``, ``checkpoint``, ``variant``, ``cfg_options``,
        ``date`` and ``settings``: per name its ``cfg_options``,
        ``metrics`` (test) and ``val_metrics``.
    """
    from mmengine.runner import Runner
    make_configs = make_configs or setting_configs
    report = dict(config=config, checkpoint=checkpoint, variant=variant,
                  cfg_options=cfg_options, settings={},
                  date=time.strftime('%Y-%m-%d'))
    for name, options in settings.items():
        test_cfg, val_cfg = make_configs(cfg, checkpoint, name, options,
                                         work_dir)
        metrics = Runner.from_cfg(test_cfg).test()
        val_metrics = Runner.from_cfg(val_cfg).test()
        report['settings'][name] = dict(
            cfg_options=options,
            metrics={k: float(v) for k, v in metrics.items()},
            val_metrics={k: float(v) for k, v in val_metrics.items()})
    return report


def load_config(config: str, checkpoint: str, variant: Optional[str],
                data_dir: str, work_dir: str,
                cfg_options: Optional[dict]) -> Config:
    """The config to test: ``config`` on the synthetic ``variant`` as the
    protocol tests it (its data, image size and metric), then
    ``cfg_options``.

    Raises:
        FileNotFoundError: If the config or the checkpoint is missing.
    """
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} not found')
    if variant:
        from .displaced import variant_config
        cfg = variant_config(config, variant, data_dir, work_dir)
    else:
        cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def common_arguments(parser) -> None:
    """The arguments both same-weights tools take."""
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--variant',
        help='test on this synthetic variant as the protocol does '
        '(compare.py --variants): its data, image size and metric')
    parser.add_argument(
        '--data-dir', default='data',
        help='where the variants\' data sets are (compare.py --data-dir)')
    parser.add_argument('--out', help='write the metrics as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config (after --variant), for every '
        'setting, as in tools/test.py')


def write_report(report: dict, out: Optional[str]) -> None:
    if out:
        import json
        with open(out, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'wrote {out}')


__all__: List[str] = [
    'parse_settings', 'setting_configs', 'run_settings', 'load_config',
    'common_arguments', 'write_report'
]
