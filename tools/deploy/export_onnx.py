"""Export an image model of the zoo to ONNX, post-processing included.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT --out model.onnx \
        [--shape H W | --dynamic]

The graph takes the image after the test pipeline's resize, (1, 3, H, W)
float32 in the pipeline's channel order (BGR), 0-255, and returns ``boxes``
(N, 4), ``scores`` (N,), ``labels`` (N,) and ``masks`` (N, H, W) uint8; the
data preprocessor's normalisation and padding and the head's whole
post-processing are inside. Standard ONNX operators (opset 17) only. See
docs/deploy.md.
"""
import argparse
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint file (omitted: the config\'s initial weights, for '
        'trying the exporter)')
    parser.add_argument('--out', required=True, help='the .onnx file')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size of a fixed-size graph (default: the test '
        'pipeline\'s Resize scale)')
    group.add_argument(
        '--dynamic',
        action='store_true',
        help='a graph for any input size (traced at --trace-shape)')
    parser.add_argument(
        '--trace-shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='the tracing example\'s size for --dynamic (default: the test '
        'pipeline\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/test.py')
    return parser.parse_args(argv)


def test_scale(cfg):
    """(H, W) of the test pipeline's Resize ``scale`` (mmcv's (w, h)), or
    None. With ``keep_ratio`` only square images come out at exactly this
    size: export other data with ``--dynamic``."""
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        if str(step.get('type', '')).split('.')[-1] == 'Resize':
            scale = step.get('scale')
            if isinstance(scale, (list, tuple)) and len(scale) == 2:
                return int(scale[1]), int(scale[0])
            if isinstance(scale, int):
                return scale, scale
    return None


def main(argv=None):
    args = parse_args(argv)
    from mmdet_pep.deploy import (NotExportableError, build_deploy_model,
                                  export_onnx)
    if not osp.isfile(args.config):
        sys.exit(f'error: config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = args.shape or args.trace_shape or test_scale(cfg) or (800, 1333)
    try:
        model = build_deploy_model(cfg, args.checkpoint)
    except (NotExportableError, FileNotFoundError) as e:
        sys.exit(f'error: {args.config}: {e}')
    start = time.time()
    export_onnx(model, args.out, shape=tuple(shape), dynamic=args.dynamic)
    kind = 'any size' if args.dynamic else f'{shape[0]}x{shape[1]}'
    print(f'[export_onnx] wrote {args.out} ({kind}, '
          f'{osp.getsize(args.out) / 2**20:.1f} MiB) in '
          f'{time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
