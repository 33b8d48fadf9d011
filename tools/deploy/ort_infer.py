"""Run an exported ONNX model with onnxruntime on images or a folder.

    python tools/deploy/ort_infer.py model.onnx IMAGES --out-dir OUT \
        [--pred-score-thr 0.3] [--config CONFIG]

mmdet's DetInferencer with the graph as model: the same test pipeline (from
the config stored in the file at export, or --config), visualisations in
OUT/vis and predictions as JSON in OUT/preds, as `tools/demo.py` and mmdet's
`demo/image_demo.py` write them. No PyTorch model is built.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('onnx', help='file written by export_onnx.py')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('--out-dir', default='outputs')
    parser.add_argument(
        '--config', help='the config exported (default: the stored one)')
    parser.add_argument('--pred-score-thr', type=float, default=0.3)
    parser.add_argument('--threads', type=int, help='onnxruntime threads')
    parser.add_argument('--no-save-vis', action='store_true')
    parser.add_argument('--palette', default='none')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmdet_pep.deploy.inferencer import ort_inferencer
    if not osp.exists(args.inputs):
        sys.exit(f'error: no image or folder at {args.inputs}')
    try:
        inferencer = ort_inferencer(
            args.onnx, args.config, args.threads, palette=args.palette)
    except (ImportError, FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    try:
        results = inferencer(
            args.inputs,
            out_dir=args.out_dir,
            no_save_pred=False,
            no_save_vis=args.no_save_vis,
            pred_score_thr=args.pred_score_thr)
    except (TypeError, ValueError) as e:
        sys.exit(f'error: {e}')
    num = sum(
        sum(s >= args.pred_score_thr for s in p['scores'])
        for p in results['predictions'])
    print(f'[ort_infer] {len(results["predictions"])} image(s), {num} '
          f'instance(s) above {args.pred_score_thr}; results in '
          f'{args.out_dir}/preds' +
          ('' if args.no_save_vis else f' and {args.out_dir}/vis'))


if __name__ == '__main__':
    main()
