"""Generate the synthetic crowded-objects data set in COCO format.

Examples::

    # the demo set
    python tools/dataset_converters/make_synthetic.py data/synthetic \\
        --num-train 800 --num-val 100 --num-test 200 --image-size 128 --seed 0

    # the 'dense' variant of compare.py --variants: larger images, a fourth
    # class, smaller objects in larger clusters
    python tools/dataset_converters/make_synthetic.py data/synthetic_dense \\
        --image-size 144 --num-classes 4 --size-scale 0.7 \\
        --cluster-size 3 7 --max-objects 16

    # the 'crowded' variant: clusters of tiny objects, ~24 % of which lose
    # every grid cell (docs/experiments/displaced.md)
    python tools/dataset_converters/make_synthetic.py data/synthetic_crowded \
        --image-size 256 --size-scale 0.16 --cluster-size 16 32 \
        --max-objects 80
"""
import argparse
import importlib.util
import os.path as osp
import time

# ``mmdet_pep/__init__.py`` imports mmdet to register modules; loading the
# generator from its file keeps this script usable without mmdet installed.
def _synthetic_py():
    """Path of ``mmdet_pep/datasets/synthetic.py``: next to this script in a
    clone, else in the installed package (this script then runs from
    ``mmdet_pep/.mim/tools``)."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    path = osp.join(root, 'mmdet_pep', 'datasets', 'synthetic.py')
    if not osp.isfile(path):
        package = importlib.util.find_spec('mmdet_pep')  # does not import it
        if package is None:
            raise ImportError(f'{path} not found and mmdet_pep not installed')
        path = osp.join(package.submodule_search_locations[0], 'datasets',
                        'synthetic.py')
    return path


def load_synthetic():
    """Import ``mmdet_pep/datasets/synthetic.py`` without its package."""
    spec = importlib.util.spec_from_file_location('mmdet_pep_synthetic',
                                                  _synthetic_py())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args():
    parser = argparse.ArgumentParser(
        description='Generate the synthetic crowded-objects data set '
        '(COCO format, RLE masks)')
    parser.add_argument('out_dir', help='output root directory')
    parser.add_argument(
        '--num-train', type=int, default=800, help='number of train images')
    parser.add_argument(
        '--num-val', type=int, default=100, help='number of val images')
    parser.add_argument(
        '--num-test',
        type=int,
        default=200,
        help='number of held-out test images (another seed; 0: none)')
    parser.add_argument(
        '--image-size', type=int, default=128, help='square image side (px)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=3,
        help='classes: the first N of disc, square, triangle, pentagon')
    parser.add_argument(
        '--size-scale',
        type=float,
        default=1.,
        help='factor on every object extent')
    parser.add_argument(
        '--cluster-size',
        type=int,
        nargs=2,
        default=(2, 5),
        metavar=('LEAST', 'MOST'),
        help='objects per cluster of touching same-class objects')
    parser.add_argument(
        '--max-objects',
        type=int,
        default=12,
        help='most objects per image')
    return parser.parse_args()


def main():
    args = parse_args()
    synthetic = load_synthetic()
    start = time.perf_counter()
    ann_files = synthetic.generate_dataset(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        image_size=args.image_size,
        seed=args.seed,
        num_classes=args.num_classes,
        size_scale=args.size_scale,
        cluster_size=tuple(args.cluster_size),
        max_objects=args.max_objects)
    print(f'Generated in {time.perf_counter() - start:.1f} s')
    for split, ann_file in ann_files.items():
        stats = synthetic.dataset_statistics(ann_file)
        print(f'[{split}] images: {osp.join(args.out_dir, split)}, '
              f'annotations: {ann_file}')
        print(f'[{split}] {stats["num_images"]} images, '
              f'{stats["num_instances"]} instances, '
              f'{stats["mean_instances_per_image"]:.2f} instances/image, '
              f'{stats["crowded_fraction"]:.1%} touch or overlap a '
              'same-class instance, per class: '
              f'{stats["instances_per_class"]}')


if __name__ == '__main__':
    main()
