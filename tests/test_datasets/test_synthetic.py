import json
import os.path as osp
import subprocess
import sys
from collections import defaultdict

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmdet_pep.datasets.synthetic import (CLASSES, SHAPES, VARIANTS, Layout,
                                          _sample_cluster, dataset_statistics,
                                          generate_coco_split,
                                          generate_dataset, metainfo)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_IMAGES = 6
IMAGE_SIZE = 96


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('synthetic'))
    ann_file = generate_coco_split(
        out_dir, 'train', NUM_IMAGES, image_size=IMAGE_SIZE, seed=3)
    with open(ann_file) as f:
        return out_dir, ann_file, json.load(f)


def _masks_per_image(coco_dict):
    anns = defaultdict(list)
    for ann in coco_dict['annotations']:
        anns[ann['image_id']].append(ann)
    return {
        img_id: (items, [
            mask_utils.decode(ann['segmentation']).astype(bool)
            for ann in items
        ])
        for img_id, items in anns.items()
    }


def _read_split(out_dir, split='train'):
    ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'rb') as f:
        ann_bytes = f.read()
    coco_dict = json.loads(ann_bytes)
    images = []
    for img in coco_dict['images']:
        with open(osp.join(out_dir, split, img['file_name']), 'rb') as f:
            images.append(f.read())
    return ann_bytes, images


def test_metainfo():
    meta = metainfo()
    assert meta['classes'] == CLASSES == ('disc', 'square', 'triangle')
    assert len(meta['palette']) == len(CLASSES)
    assert all(len(color) == 3 for color in meta['palette'])


def test_coco_layout(coco):
    out_dir, ann_file, coco_dict = coco
    assert ann_file == osp.join(out_dir, 'annotations', 'instances_train.json')
    assert [cat['id'] for cat in coco_dict['categories']] == [1, 2, 3]
    assert [cat['name'] for cat in coco_dict['categories']] == list(CLASSES)
    assert [img['id']
            for img in coco_dict['images']] == list(range(1, NUM_IMAGES + 1))
    for img in coco_dict['images']:
        assert img['file_name'] == f'{img["id"]:06d}.png'
        assert img['height'] == img['width'] == IMAGE_SIZE
        image = cv2.imread(osp.join(out_dir, 'train', img['file_name']))
        assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)

    ann_ids = [ann['id'] for ann in coco_dict['annotations']]
    assert len(set(ann_ids)) == len(ann_ids)
    for ann in coco_dict['annotations']:
        assert ann['iscrowd'] == 0
        assert 1 <= ann['category_id'] <= len(CLASSES)
        assert isinstance(ann['segmentation']['counts'], str)
        assert ann['segmentation']['size'] == [IMAGE_SIZE, IMAGE_SIZE]
        assert isinstance(ann['area'], int) and ann['area'] >= 20
        assert all(isinstance(v, float) for v in ann['bbox'])
    # every image has at least one annotation
    assert {ann['image_id']
            for ann in coco_dict['annotations']
            } == {img['id']
                  for img in coco_dict['images']}


def test_masks_match_boxes_and_areas(coco):
    _, _, coco_dict = coco
    for anns, masks in _masks_per_image(coco_dict).values():
        for ann, mask in zip(anns, masks):
            ys, xs = np.nonzero(mask)
            x1, y1 = xs.min(), ys.min()
            expected = [x1, y1, xs.max() - x1 + 1, ys.max() - y1 + 1]
            assert ann['bbox'] == [float(v) for v in expected]
            assert ann['area'] == mask.sum()


def test_visible_masks_are_disjoint(coco):
    _, _, coco_dict = coco
    for _, masks in _masks_per_image(coco_dict).values():
        coverage = np.sum(masks, axis=0)
        assert coverage.max() == 1


def test_crowdedness(coco):
    _, ann_file, coco_dict = coco
    kernel = np.ones((3, 3), np.uint8)
    crowded = 0
    for anns, masks in _masks_per_image(coco_dict).values():
        for i, ann in enumerate(anns):
            halo = cv2.dilate(masks[i].astype(np.uint8), kernel).astype(bool)
            crowded += any(
                (halo & masks[j]).any() for j, other in enumerate(anns)
                if j != i and other['category_id'] == ann['category_id'])
    num_instances = len(coco_dict['annotations'])
    assert crowded / num_instances > 0.3

    stats = dataset_statistics(ann_file)
    assert stats['num_images'] == NUM_IMAGES
    assert stats['num_instances'] == num_instances
    assert stats['mean_instances_per_image'] == num_instances / NUM_IMAGES
    assert stats['crowded_fraction'] == pytest.approx(crowded / num_instances)
    assert sum(stats['instances_per_class'].values()) == num_instances


def test_determinism(tmp_path):
    kwargs = dict(num_images=4, image_size=64)
    generate_coco_split(str(tmp_path / 'a'), 'train', seed=7, **kwargs)
    generate_coco_split(str(tmp_path / 'b'), 'train', seed=7, **kwargs)
    generate_coco_split(str(tmp_path / 'c'), 'train', seed=8, **kwargs)
    ann_a, images_a = _read_split(str(tmp_path / 'a'))
    ann_b, images_b = _read_split(str(tmp_path / 'b'))
    ann_c, images_c = _read_split(str(tmp_path / 'c'))
    assert ann_a == ann_b
    assert images_a == images_b
    assert ann_a != ann_c
    assert all(a != c for a, c in zip(images_a, images_c))


def test_generate_dataset(tmp_path):
    ann_files = generate_dataset(
        str(tmp_path), num_train=3, num_val=2, num_test=4, image_size=64,
        seed=0)
    assert set(ann_files) == {'train', 'val', 'test'}
    images = {}
    for split, num in (('train', 3), ('val', 2), ('test', 4)):
        _, images[split] = _read_split(str(tmp_path), split)
        assert len(images[split]) == num
    # val and test draw from derived seeds: no split repeats another's
    # images.
    assert not set(images['train']) & set(images['val'])
    assert not set(images['train']) & set(images['test'])
    assert not set(images['val']) & set(images['test'])


def test_held_out_split_leaves_train_and_val_unchanged(tmp_path):
    """Adding the test split changed neither train nor val: the sets, and
    every result measured on them, stay as they were."""
    generate_dataset(str(tmp_path / 'a'), num_train=2, num_val=2, num_test=0,
                     image_size=64, seed=3)
    generate_dataset(str(tmp_path / 'b'), num_train=2, num_val=2, num_test=3,
                     image_size=64, seed=3)
    for split in ('train', 'val'):
        assert _read_split(str(tmp_path / 'a'), split) == _read_split(
            str(tmp_path / 'b'), split)
    assert not osp.exists(tmp_path / 'a' / 'annotations' /
                          'instances_test.json')


def test_generate_dataset_rejects_a_negative_test_size(tmp_path):
    with pytest.raises(ValueError, match='num_test'):
        generate_dataset(str(tmp_path), num_train=1, num_val=1, num_test=-1)


@pytest.mark.parametrize('kwargs, name', [
    (dict(num_images=0), 'num_images'),
    (dict(num_images=2, image_size=31), 'image_size'),
    (dict(num_images=2, seed=-1), 'seed'),
    (dict(num_images=2, min_area=0), 'min_area'),
    (dict(num_images=2, max_objects=2), 'max_objects'),
    (dict(num_images=2, num_classes=0), 'num_classes'),
    (dict(num_images=2, num_classes=5), 'num_classes'),
    (dict(num_images=2, size_scale=0.), 'size_scale'),
    (dict(num_images=2, cluster_size=(1, 3)), 'cluster_size'),
    (dict(num_images=2, cluster_size=(4, 3)), 'cluster_size'),
])
def test_argument_validation(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_coco_split(str(tmp_path), 'train', **kwargs)


def test_cli(tmp_path):
    script = osp.join(REPO_ROOT, 'tools', 'dataset_converters',
                      'make_synthetic.py')
    cmd = [
        sys.executable, script,
        str(tmp_path), '--num-train', '2', '--num-val', '1', '--image-size',
        '64', '--seed', '1'
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert 'instances' in result.stdout
    for split, num in (('train', 2), ('val', 1)):
        with open(tmp_path / 'annotations' / f'instances_{split}.json') as f:
            assert len(json.load(f)['images']) == num
        assert (tmp_path / split / f'{num:06d}.png').is_file()


def test_metainfo_of_more_classes():
    meta = metainfo(4)
    assert meta['classes'] == SHAPES == ('disc', 'square', 'triangle',
                                         'pentagon')
    assert len(set(meta['palette'])) == 4
    assert metainfo(2)['classes'] == ('disc', 'square')
    with pytest.raises(ValueError, match='num_classes'):
        metainfo(5)


def test_cluster_sizes_and_classes_follow_the_layout():
    layout = Layout(num_classes=4, size_scale=1., cluster_size=(3, 7))
    rng = np.random.default_rng(0)
    sizes, labels = [], set()
    for _ in range(200):
        members = _sample_cluster(rng, 128, np.zeros(3), 20, layout)
        sizes.append(len(members))
        assert len({m['label'] for m in members}) == 1  # one class
        labels.add(members[0]['label'])
    # Large objects (20% of clusters) keep clusters of at most 3.
    assert min(sizes) == 3 and max(sizes) == 7
    assert labels == {0, 1, 2, 3}
    # The budget still caps a cluster.
    members = _sample_cluster(rng, 128, np.zeros(3), 2, layout)
    assert len(members) == 2


def test_size_scale_shrinks_objects(tmp_path):
    areas = {}
    for scale in (1., 0.5):
        ann = generate_coco_split(
            str(tmp_path / str(scale)), 'val', 8, image_size=96, seed=2,
            size_scale=scale)
        with open(ann) as f:
            areas[scale] = np.mean([a['area'] for a in json.load(f)[
                'annotations']])
    # Areas scale with the square of the extent (0.25), clipped and
    # occluded objects blur it.
    assert areas[0.5] / areas[1.] < 0.4


def test_dense_variant(tmp_path):
    kwargs = VARIANTS['dense']
    assert kwargs['image_size'] != 128 and kwargs['num_classes'] == 4
    ann_files = generate_dataset(str(tmp_path), num_train=1, num_val=12,
                                 **kwargs)
    with open(ann_files['val']) as f:
        coco_dict = json.load(f)
    assert [c['name'] for c in coco_dict['categories']] == list(SHAPES)
    assert {a['category_id'] for a in coco_dict['annotations']} == {
        1, 2, 3, 4
    }
    assert {(i['height'], i['width']) for i in coco_dict['images']} == {
        (kwargs['image_size'], ) * 2
    }
    assert coco_dict['info']['layout'] == dict(
        num_classes=4, size_scale=0.7, cluster_size=[3, 7])
    # More objects per image than the demo layout draws.
    demo = generate_coco_split(str(tmp_path / 'demo'), 'val', 12, seed=1)
    stats = dataset_statistics(ann_files['val'])
    assert stats['mean_instances_per_image'] > dataset_statistics(
        demo)['mean_instances_per_image']
    # The demo set records no layout: its files are as before layouts.
    with open(demo) as f:
        assert 'layout' not in json.load(f)['info']


def test_cli_layout(tmp_path):
    script = osp.join(REPO_ROOT, 'tools', 'dataset_converters',
                      'make_synthetic.py')
    subprocess.run([
        sys.executable, script,
        str(tmp_path), '--num-train', '1', '--num-val', '1', '--image-size',
        '64', '--num-classes', '4', '--size-scale', '0.8', '--cluster-size',
        '3', '6', '--max-objects', '14'
    ], capture_output=True, text=True, check=True)
    with open(tmp_path / 'annotations' / 'instances_val.json') as f:
        info = json.load(f)['info']
    assert info['layout'] == dict(
        num_classes=4, size_scale=0.8, cluster_size=[3, 6])
