"""One checkpoint tested under several inference settings, on the same
weights: each setting on the held-out test split and on the val split, as
the protocol tests a training, with the protocol's metric.

A setting is ``--setting NAME [KEY=VALUE ...]`` (``--cfg-options``
syntax; none: the config as it is). ``--out`` writes every setting's test
and val metrics as JSON. PEP's Tab. 2 switches have their own preset tool,
``pep_same_weights.py``.

Example (EmbedMask's candidate ranking, issue #41)::

    python tools/analysis_tools/same_weights.py \\
        configs/embedmask/embedmask_r18_fpn_1200it_synthetic.py \\
        work_dirs/demo/EmbedMask/seed1/iter_1200.pth --variant demo \\
        --setting official \\
        --setting mmdet model.test_cfg.nms_pre_rank=cls \\
        --out ranking.json
"""
import argparse
import sys

from mmdet_pep_tools import same_weights


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test one checkpoint under several inference settings')
    same_weights.common_arguments(parser)
    parser.add_argument(
        '--setting', nargs='+', action='append', required=True,
        metavar='NAME [KEY=VALUE ...]',
        help='a setting: its name, then the config overrides it tests')
    parser.add_argument('--work-dir', default='work_dirs/same_weights')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    settings = same_weights.parse_settings(args.setting)
    cfg = same_weights.load_config(args.config, args.checkpoint,
                                   args.variant, args.data_dir,
                                   args.work_dir, args.cfg_options)
    report = same_weights.run_settings(
        cfg, args.checkpoint, settings, args.work_dir, config=args.config,
        variant=args.variant, cfg_options=args.cfg_options)
    same_weights.write_report(report, args.out)
    return report


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
