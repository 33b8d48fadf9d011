"""Generate the synthetic video instance segmentation set (YouTube-VIS
layout and mmdet's converted layout; see mmdet_pep.datasets.synthetic_video).

Example::

    python tools/dataset_converters/make_synthetic_vis.py data/synthetic_vis \\
        --num-train 120 --num-val 20 --num-test 40 --num-frames 8 \\
        --image-size 128 --seed 0
"""
import argparse

from mmdet_pep.datasets.synthetic_video import generate_vis_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic video instance segmentation set')
    parser.add_argument('out_dir', help='output root directory')
    parser.add_argument('--num-train', type=int, default=120,
                        help='number of train clips')
    parser.add_argument('--num-val', type=int, default=20,
                        help='number of val clips')
    parser.add_argument('--num-test', type=int, default=40,
                        help='number of held-out test clips')
    parser.add_argument('--num-frames', type=int, default=8,
                        help='frames per clip')
    parser.add_argument('--image-size', type=int, default=128,
                        help='square frame side (px)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (val uses seed + 1, test seed + 2)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    files = generate_vis_dataset(args.out_dir, args.num_train, args.num_val,
                                 args.num_frames, args.image_size, args.seed,
                                 args.num_test)
    for split, num in (('train', args.num_train), ('val', args.num_val),
                       ('test', args.num_test)):
        print(f'{split}: {num} clips of {args.num_frames} frames -> '
              f'{files[split][1]}')


if __name__ == '__main__':
    main()
