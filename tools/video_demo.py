"""Video instance segmentation demo: synthetic clips -> train -> YouTube-VIS
AP and identity switches -> clips drawn with one colour per track.

1. Generates the embedded synthetic video set if it is missing
   (``mmdet_pep.datasets.synthetic_video``).
2. Trains the video config with mmengine's Runner, unless --checkpoint is
   given; first makes the image weights it starts from (its
   ``load_from``) when they are missing (``mmdet_pep_tools.image_init``:
   the image model trained by compare.py's protocol, converted).
3. Tests it: YouTube-VIS AP and identity switches
   (``YouTubeVISIDSwitchMetric``).
4. Draws the first clips with mmdet's ``TrackLocalVisualizer`` (one colour
   per track id) as a frame strip (PNG) and an animated GIF each, and
   prints the numbers and the paths.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config',
        default=osp.join(
            ROOT, 'configs/sipmask/sipmask-vis_r18_fpn_1200it_synthetic-vis.py'))
    parser.add_argument('--work-dir', default='work_dirs/video_demo')
    parser.add_argument('--data-root', default='data/synthetic_vis/')
    parser.add_argument(
        '--checkpoint', help='test this checkpoint instead of training')
    parser.add_argument(
        '--max-iters', type=int, help="train this many iterations instead "
        "of the config's (the LR schedule compressed in proportion)")
    parser.add_argument('--num-drawn', type=int, default=4,
                        help='clips written as strips and GIFs')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='least score of a drawn instance')
    parser.add_argument('--num-train', type=int, default=120,
                        help='clips of a generated train split')
    parser.add_argument('--num-val', type=int, default=20,
                        help='clips of a generated val split')
    parser.add_argument('--num-test', type=int, default=40,
                        help='clips of a generated held-out test split (the '
                        'one the demo tests and draws)')
    parser.add_argument('--num-frames', type=int, default=8)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='KEY=VALUE overrides of the config, as tools/train.py')
    return parser.parse_args(argv)


def make_data(args) -> None:
    from mmdet_pep.datasets.synthetic_video import ensure_vis_dataset
    if ensure_vis_dataset(
            args.data_root,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            num_frames=args.num_frames,
            image_size=args.image_size):
        print(f'[video_demo] wrote {args.num_train} train, {args.num_val} '
              f'val and {args.num_test} test clips to {args.data_root}')


def build_cfg(args):
    from mmdet_pep_tools.config_rewrites import set_data_root, set_max_iters
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir
    if args.max_iters:
        set_max_iters(cfg, args.max_iters)
    return cfg


def draw_clips(runner, out_dir: str, num: int,
               score_thr: float = 0.3) -> list:
    """Predict the first ``num`` test clips again and write each as a
    frame strip (PNG) and an animated GIF, every track in its own colour
    (mmdet's ``TrackLocalVisualizer``; mmdet's ``TrackVisualizationHook``
    would also draw the GT, which fails on its ``instances_ids``, and names
    clip folders by a path level the YouTube-VIS layout does not have)."""
    import mmcv
    import numpy as np
    import torch
    from PIL import Image
    model, visualizer = runner.model, runner.visualizer
    model.eval()
    written = []
    for index, data in enumerate(runner.test_dataloader):
        if index >= num:
            break
        with torch.no_grad():
            (clip, ) = model.test_step(data)
        frames = []
        for frame in clip:
            image = mmcv.imread(frame.img_path, channel_order='rgb')
            visualizer.add_datasample(
                'frame', image, data_sample=frame, draw_gt=False,
                draw_pred=True, pred_score_thr=score_thr)
            frames.append(visualizer.get_image())
        name = osp.basename(osp.dirname(clip[0].img_path))
        strip_path = osp.join(out_dir, f'clip_{name}.png')
        gif_path = osp.join(out_dir, f'clip_{name}.gif')
        Image.fromarray(np.concatenate(frames, axis=1)).save(strip_path)
        images = [Image.fromarray(f) for f in frames]
        images[0].save(gif_path, save_all=True, append_images=images[1:],
                       duration=300, loop=0)
        written += [strip_path, gif_path]
    return written


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    import mmdet_pep  # registers the modules
    mmdet_pep.register_checkpoint_safe_globals()  # weights-only checkpoints
    from mmengine.runner import Runner
    from mmdet.utils import register_all_modules
    from mmdet_pep_tools.launch import leave_process_group
    register_all_modules(init_default_scope=True)
    make_data(args)
    cfg = build_cfg(args)
    checkpoint = args.checkpoint
    if checkpoint is None:
        # The image weights it starts from, made when missing
        # (compare_vis.py's image step, with compare.py's folders).
        from mmdet_pep_tools.image_init import ensure_image_init
        ensure_image_init(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
        checkpoint = osp.join(args.work_dir,
                              f'iter_{cfg.train_cfg.max_iters}.pth')
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    written = draw_clips(runner, args.work_dir, args.num_drawn,
                         args.score_thr)
    leave_process_group()
    ap = metrics.get('youtube_vis/segm_mAP')
    switches = metrics.get('youtube_vis/id_switches')
    print(f'[video_demo] YouTube-VIS mask AP {ap}, identity switches '
          f'{switches:.0f}' if switches is not None else
          f'[video_demo] YouTube-VIS mask AP {ap}')
    for path in written:
        print(f'[video_demo] wrote {path}')
    return metrics, written


if __name__ == '__main__':
    main()
