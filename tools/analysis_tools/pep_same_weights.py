"""PEP's mechanisms switched off at inference, on the same weights.

The secondary view of the paper's Tab. 2 (issue #39): one trained PEP
checkpoint tested four ways, on the held-out test split and on the val
split of a synthetic variant, with the protocol's metric (on ``crowded``
``DisplacedCocoMetric``: AP and recall@0.5 of the displaced instances):

- ``PEP``: as trained (excavating, purifying, and what the config puts
  after them);
- ``no-excavating``: ``model.mask_head.excavator=None``;
- ``no-purifying``: ``model.mask_head.purifier=None``, so Matrix NMS alone
  removes duplicates: the purifier's share is ``PEP`` against this row;
- ``baseline``: both off, the Baseline's inference on PEP's weights.

A trained Tab. 2 (each row its own training) is ``compare.py`` with the
row configs; this tool only says what each mechanism does to the weights
it was trained with. ``--out`` writes every setting's test and val
metrics as JSON.

Example::

    python tools/analysis_tools/pep_same_weights.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py \\
        work_dirs/crowded/PEP/seed0/iter_1200.pth --variant crowded \\
        --out docs/experiments/results/same_weights_crowded_seed0.json
"""
import argparse
import copy
import json
import os.path as osp
import sys
import time

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

SETTINGS = {
    'PEP': {},
    'no-excavating': {
        'model.mask_head.excavator': None
    },
    'no-purifying': {
        'model.mask_head.purifier': None
    },
    'baseline': {
        'model.mask_head.excavator': None,
        'model.mask_head.purifier': None
    },
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test one PEP checkpoint with its excavator and purifier '
        'switched off at inference')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--variant',
        help='test on this synthetic variant as the protocol does '
        '(compare.py --variants): its data, image size and metric')
    parser.add_argument(
        '--data-dir', default='data',
        help='where the variants\' data sets are (compare.py --data-dir)')
    parser.add_argument(
        '--settings', nargs='+', choices=list(SETTINGS),
        default=list(SETTINGS), help='the settings to test')
    parser.add_argument('--work-dir', default='work_dirs/pep_same_weights')
    parser.add_argument('--out', help='write the metrics as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config (after --variant), as in '
        'tools/test.py')
    return parser.parse_args(argv)


def setting_configs(cfg: Config, checkpoint: str, setting: str,
                    work_dir: str) -> tuple:
    """``(test config, val config)`` of one setting: ``cfg`` with the
    setting's switches, testing ``checkpoint`` on the test and the val
    split (the val split as the protocol tests it)."""
    from mmdet_pep_tools.training import on_val_split, without_validation
    head = cfg.model.mask_head
    missing = [
        key.rsplit('.', 1)[1] for key in SETTINGS[setting]
        if head.get(key.rsplit('.', 1)[1]) is None
    ]
    if missing:
        raise ValueError(f'{setting}: the config\'s mask_head has no '
                         f'{missing} to switch off')
    one = copy.deepcopy(cfg)
    one.merge_from_dict(SETTINGS[setting])
    one.work_dir = osp.join(work_dir, setting)
    one.experiment_name = f'same_weights_{setting}'
    test_cfg = without_validation(one)
    test_cfg.load_from = checkpoint
    return test_cfg, on_val_split(one, checkpoint)


def main(argv=None) -> dict:
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint,
                                                 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} not found')
    if args.variant:
        from mmdet_pep_tools.displaced import variant_config
        cfg = variant_config(args.config, args.variant, args.data_dir,
                             args.work_dir)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.get('type') != 'PEP':
        raise ValueError(f'{args.config}: not a PEP model (model type '
                         f'{cfg.model.get("type")})')
    report = dict(config=args.config, checkpoint=args.checkpoint,
                  variant=args.variant, cfg_options=args.cfg_options,
                  settings={},
                  date=time.strftime('%Y-%m-%d'))
    for setting in args.settings:
        test_cfg, val_cfg = setting_configs(cfg, args.checkpoint, setting,
                                            args.work_dir)
        metrics = Runner.from_cfg(test_cfg).test()
        val_metrics = Runner.from_cfg(val_cfg).test()
        report['settings'][setting] = dict(
            cfg_options=SETTINGS[setting],
            metrics={k: float(v) for k, v in metrics.items()},
            val_metrics={k: float(v) for k, v in val_metrics.items()})
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
