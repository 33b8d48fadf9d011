"""The main job (`make demo`): data, training, evaluation and pictures.

1. Generates the embedded crowded-objects set if it is missing (or uses the
   COCO-format set given with --data-root/--train-ann/--val-ann/--test-ann).
   Validation during training uses the val split; the reported AP is the
   held-out test split's (200 images of another seed for the synthetic set).
2. Trains the model of --config with mmengine's Runner (progress and ETA
   in the log every 20 iterations).
3. Evaluates bbox and segm AP with mmdet's CocoMetric on the test split.
4. Runs DetInferencer on a few test images and saves the visualisations.
5. Plots the loss curves, then prints the AP table and every path written.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config',
        default=osp.join(ROOT, 'configs/pep/pep_r18_fpn_1200it_synthetic.py'))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--data-root',
        default='data/synthetic/',
        help='COCO-format data root; the synthetic set is generated here if '
        'its annotation files are missing and --no-generate is not given')
    parser.add_argument(
        '--train-ann', default='annotations/instances_train.json')
    parser.add_argument('--val-ann', default='annotations/instances_val.json')
    parser.add_argument(
        '--test-ann',
        default='annotations/instances_test.json',
        help='the split the AP is reported on (a set without a held-out '
        'split: --test-ann and --test-img of its val split)')
    parser.add_argument('--train-img', default='train/')
    parser.add_argument('--val-img', default='val/')
    parser.add_argument('--test-img', default='test/')
    parser.add_argument(
        '--classes',
        nargs='+',
        help='class names of a real data set (default: the config\'s)')
    parser.add_argument('--no-generate', action='store_true')
    parser.add_argument('--num-train', type=int, default=800)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--num-test', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the generated data set')
    parser.add_argument(
        '--train-seed',
        type=int,
        default=0,
        help='seed of training (randomness.seed); the default 0 is the seed '
        'of the seed-0 result files of docs/results/')
    parser.add_argument(
        '--max-iters',
        type=int,
        help='override the schedule length; the LR schedule, validation and '
        'checkpoint are scaled to it (iteration-based configs)')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--num-vis', type=int, default=4)
    return parser.parse_args(argv)


def ensure_data(args):
    """Generate the synthetic set unless it (or a given set) exists."""
    anns = [
        osp.join(args.data_root, a)
        for a in (args.train_ann, args.val_ann, args.test_ann)
    ]
    if all(osp.isfile(a) for a in anns):
        print(f'[demo] data: using {args.data_root}')
        return
    if args.no_generate:
        missing = [a for a in anns if not osp.isfile(a)]
        raise FileNotFoundError(
            f'annotation file(s) not found: {missing} (a data set without '
            'a held-out test split: pass its val split as --test-ann and '
            '--test-img)')
    from mmdet_pep.datasets.synthetic import (dataset_statistics,
                                              generate_dataset)
    print(f'[demo] data: generating the crowded-objects set in '
          f'{args.data_root} ({args.num_train} train / {args.num_val} val / '
          f'{args.num_test} test, '
          f'{args.image_size} px, seed {args.seed})')
    paths = generate_dataset(
        args.data_root,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        image_size=args.image_size,
        seed=args.seed)
    stats = dataset_statistics(paths['train'])
    print(f'[demo] data: {stats["num_instances"]} train instances, '
          f'{stats["mean_instances_per_image"]:.1f} per image, '
          f'{stats["crowded_fraction"]:.0%} touch another of their class')


def build_cfg(args):
    from mmengine.config import Config

    from mmdet_pep_tools.config_rewrites import (set_data_root, set_max_iters,
                                                 set_seed)
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    set_data_root(
        cfg,
        args.data_root,
        ann_files=dict(train=args.train_ann, val=args.val_ann,
                       test=args.test_ann),
        img_prefixes=dict(train=args.train_img, val=args.val_img,
                          test=args.test_img))
    if args.classes:
        for split in ('train', 'val', 'test'):
            cfg[f'{split}_dataloader'].dataset.metainfo = dict(
                classes=tuple(args.classes))
        cfg.model.mask_head.num_classes = len(args.classes)
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    if args.max_iters:
        set_max_iters(cfg, args.max_iters)
    if args.train_seed is not None:
        set_seed(cfg, args.train_seed)
    return cfg


def plot_losses(work_dir, out_png):
    """Plot every loss term logged in mmengine's scalars.json."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return None
    series = {}
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' not in rec:
                continue
            for k, v in rec.items():
                if k.startswith('loss'):
                    series.setdefault(k, []).append((rec['iter'], v))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, pts in sorted(series.items()):
        ax.plot(*zip(*pts), label=k, lw=2 if k == 'loss' else 1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_yscale('log')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def visualise(cfg_path, ckpt, cfg, out_dir, num):
    """Draw predictions on ``num`` test images with DetInferencer and tile
    them, enlarged, into one sheet (the synthetic images are 128 px)."""
    import mmcv
    import numpy as np

    from mmdet.apis import DetInferencer
    ds = cfg.test_dataloader.dataset
    with open(osp.join(ds.data_root, ds.ann_file)) as f:
        images = json.load(f)['images'][:num]
    paths = [
        osp.join(ds.data_root, ds.data_prefix['img'], im['file_name'])
        for im in images
    ]
    inferencer = DetInferencer(
        model=cfg_path, weights=ckpt, device='cpu', show_progress=False)
    inferencer(paths, out_dir=out_dir, pred_score_thr=0.3, no_save_pred=True)
    vis = sorted(glob.glob(osp.join(out_dir, 'vis', '*.png')))
    if not vis:
        return []
    tiles = [mmcv.imread(p) for p in vis]
    h = max(t.shape[0] for t in tiles)
    tiles = [mmcv.impad(t, shape=(h, t.shape[1]), pad_val=255) for t in tiles]
    sheet = np.concatenate(tiles, axis=1)
    scale = max(1, 512 // h)
    sheet = mmcv.imrescale(sheet, scale, interpolation='nearest')
    sheet_path = osp.join(out_dir, 'predictions.png')
    mmcv.imwrite(sheet, sheet_path)
    return [sheet_path, *vis]


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    ensure_data(args)

    import mmdet_pep  # registers PEP's modules
    mmdet_pep.register_checkpoint_safe_globals()  # weights-only checkpoints
    from mmengine.runner import Runner
    cfg = build_cfg(args)
    os.makedirs(args.work_dir, exist_ok=True)
    cfg_path = osp.join(args.work_dir, 'demo_config.py')
    cfg.dump(cfg_path)

    print(f'[demo] training {osp.basename(args.config)} for '
          f'{cfg.train_cfg.max_iters} iterations (log: {args.work_dir})')
    runner = Runner.from_cfg(cfg)
    runner.train()
    print('[demo] evaluating bbox and segm AP on the held-out test split')
    metrics = runner.test()
    ckpt = osp.join(args.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')

    print('[demo] drawing predictions with DetInferencer')
    vis = visualise(cfg_path, ckpt, cfg, args.work_dir, args.num_vis)
    curve = plot_losses(args.work_dir, osp.join(args.work_dir,
                                                'loss_curve.png'))
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)

    print('\n[demo] results on the held-out test split (COCO AP, %):')
    print('| task | AP | AP50 | AP75 | APs | APm | APl |')
    print('|------|----|------|------|-----|-----|-----|')
    for task in ('bbox', 'segm'):
        # COCO reports -1 for a size bucket without objects.
        vals = [
            metrics.get(f'coco/{task}_{k}', -1)
            for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
        ]
        print(f'| {task} | ' + ' | '.join(
            f'{v * 100:.1f}' if v >= 0 else 'n/a' for v in vals) + ' |')
    print('\n[demo] wrote:')
    for path in [cfg_path, ckpt, osp.join(args.work_dir, 'metrics.json'),
                 curve, *vis]:
        if path:
            print(f'  {path}')
    print(f'[demo] done in {(time.time() - start) / 60:.1f} min')
    return metrics


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    main()
