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
import sys

from mmengine.config import Config

from mmdet_pep_tools import same_weights

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
    same_weights.common_arguments(parser)
    parser.add_argument(
        '--settings', nargs='+', choices=list(SETTINGS),
        default=list(SETTINGS), help='the settings to test')
    parser.add_argument('--work-dir', default='work_dirs/pep_same_weights')
    return parser.parse_args(argv)


def setting_configs(cfg: Config, checkpoint: str, setting: str,
                    work_dir: str, options: dict = None) -> tuple:
    """``(test config, val config)`` of one setting: ``cfg`` with the
    setting's switches, testing ``checkpoint`` on the test and the val
    split (the val split as the protocol tests it).

    Raises:
        ValueError: If the config has no excavator or purifier to switch
            off.
    """
    options = SETTINGS[setting] if options is None else options
    head = cfg.model.mask_head
    missing = [
        key.rsplit('.', 1)[1] for key in options
        if head.get(key.rsplit('.', 1)[1]) is None
    ]
    if missing:
        raise ValueError(f'{setting}: the config\'s mask_head has no '
                         f'{missing} to switch off')
    return same_weights.setting_configs(cfg, checkpoint, setting, options,
                                        work_dir)


def main(argv=None) -> dict:
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    cfg = same_weights.load_config(args.config, args.checkpoint,
                                   args.variant, args.data_dir,
                                   args.work_dir, args.cfg_options)
    if cfg.model.get('type') != 'PEP':
        raise ValueError(f'{args.config}: not a PEP model (model type '
                         f'{cfg.model.get("type")})')
    report = same_weights.run_settings(
        cfg, args.checkpoint, {s: SETTINGS[s] for s in args.settings},
        args.work_dir, config=args.config, variant=args.variant,
        cfg_options=args.cfg_options,
        make_configs=lambda cfg, ckpt, name, options, work_dir:
        setting_configs(cfg, ckpt, name, work_dir, options))
    same_weights.write_report(report, args.out)
    return report


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
