"""mmdet_pep_tools.displaced and tools/analysis_tools/count_displaced.py:
GT instances that lose every cell of their centre region under PEP's own
target assignment, on hand-made layouts whose answer is worked out below.

The recommended config (128 px, padded to 128) has grids 24, 18, 12, 8, 6
(cells of 5.33, 7.11, 10.67, 16 and 21.33 px), scale ranges (1, 24),
(12, 48), (24, 96), (48, 192), (96, 512) and pos_scale 0.2: an instance's
region on a level is the cells of its centre +- 0.1 x its box side. Every
square below fills pixels [x0, x1) x [y0, y1), so its centre of mass is
((x0 + x1) / 2, (y0 + y1) / 2) and its size x1 - x0.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from pycocotools import mask as mask_utils

from mmdet_pep.datasets.synthetic import VARIANTS, generate_coco_split
from mmdet_pep_tools.displaced import (build_assigner, displaced_file,
                                       displaced_instances,
                                       image_flags, load_coco, resize_of,
                                       variant_config)
from pep_testing import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'pep', 'pep_r18_fpn_1200it_synthetic.py')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


def square(x0, y0, x1, y1, size=128, width=None):
    mask = np.zeros((size, width or size), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def rle(mask):
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=list(encoded['size']),
                counts=encoded['counts'].decode('ascii'))


def coco(*images, size=128, width=None):
    """A COCO dict: one image per argument, each a list of masks (or of
    ``(mask, extra annotation fields)``); annotation ids count from 1."""
    out = dict(images=[], annotations=[], categories=[dict(id=1, name='a')])
    for img_id, masks in enumerate(images, 1):
        out['images'].append(
            dict(id=img_id, height=size, width=width or size,
                 file_name=f'{img_id}.png'))
        for item in masks:
            mask, extra = item if isinstance(item, tuple) else (item, {})
            out['annotations'].append(dict(
                dict(id=len(out['annotations']) + 1, image_id=img_id,
                     category_id=1, iscrowd=0, segmentation=rle(mask),
                     area=int(mask.sum())), **extra))
    return out


def flags_of(cfg, data, **kwargs):
    return displaced_instances(cfg, data, **kwargs)['instances']


def test_two_same_size_objects_in_one_cell_displace_one(cfg):
    # 10 px: level 0 only. Centres x 65 and 67, y 65; regions x [64, 66]
    # and [66, 68], y [64, 66]: all in cell (12, 12) (64 to 69.33 px).
    flags = flags_of(cfg, coco([square(60, 60, 70, 70),
                                square(62, 60, 72, 70)]))
    a, b = flags[1], flags[2]
    assert a['levels'] == b['levels'] == [0]
    assert a['region_cells'] == b['region_cells'] == 1
    assert sorted([a['displaced'], b['displaced']]) == [False, True]
    loser, winner = (a, b) if a['displaced'] else (b, a)
    assert loser['owners'] == [2 if loser is a else 1]
    assert loser['owned_cells'] == 0 and loser['centre_lost']
    assert winner['owned_cells'] == 1 and winner['owners'] == []
    assert not a['unassigned'] and not b['unassigned']


def test_owner_proximity_by_hand(cfg):
    # Centres (65, 65) and (67, 65), 2 px apart: the 4 px cells 16 and 16
    # (x 64-67.99), the 8 px cells 8 and 8: the same cell at both strides.
    result = displaced_instances(cfg, coco([
        square(60, 60, 70, 70), square(62, 60, 72, 70)]))
    prox = result['summary']['owner_proximity']
    assert prox == dict(median_owner_distance_px=2.0,
                        stride_4=dict(same_cell=1.0, within_one_cell=1.0),
                        stride_8=dict(same_cell=1.0, within_one_cell=1.0))
    # Centres 6 px apart, (65, 65) and (71, 65): 4 px cells 16 and 17
    # (adjacent), 8 px cells 8 and 8.
    flags = {
        1: dict(displaced=True, owners=[2], centre=[65., 65.]),
        2: dict(displaced=False, owners=[], centre=[71., 65.]),
        3: dict(displaced=True, owners=[2], centre=[79., 65.]),
    }
    # 3: 8 px from 2: 4 px cells 19 vs 17 (two apart), 8 px cells 9 vs 8.
    from mmdet_pep_tools.displaced import owner_proximity
    prox = owner_proximity(flags)
    assert prox['median_owner_distance_px'] == 8.0  # of 6 and 8, the upper
    assert prox['stride_4'] == dict(same_cell=0.0, within_one_cell=0.5)
    assert prox['stride_8'] == dict(same_cell=0.5, within_one_cell=1.0)
    assert owner_proximity({2: flags[2]})['stride_8'] == dict(
        same_cell=None, within_one_cell=None)


def test_far_apart_objects_keep_their_cells(cfg):
    flags = flags_of(cfg, coco([square(10, 10, 20, 20),
                                square(100, 100, 110, 110)]))
    for f in flags.values():
        assert not f['displaced'] and not f['centre_lost']
        assert f['owned_cells'] == f['region_cells'] > 0
        assert f['owners'] == []


def test_small_object_on_a_big_ones_centre_takes_only_the_shared_level(cfg):
    # Big: 40 px, levels 1 and 2, centre 64 +- 4: cells 8-9 on level 1
    # and 5-6 on level 2, 8 cells. Small: 14 px, levels 0 and 1, centre
    # 64 +- 1.4: cells 8-9 on level 1, the big one's whole level-1 region.
    # The smaller wins: the big one keeps its level-2 cells only.
    flags = flags_of(cfg, coco([square(44, 44, 84, 84),
                                square(57, 57, 71, 71)]))
    big, small = flags[1], flags[2]
    assert big['levels'] == [1, 2] and small['levels'] == [0, 1]
    assert big['region_cells'] == 8 and big['owned_cells'] == 4
    assert big['owners'] == [2]
    assert not big['displaced'] and not big['centre_lost']
    assert small['owned_cells'] == small['region_cells']
    assert not small['displaced']


def test_a_big_object_that_loses_every_cell_is_displaced(cfg):
    # 36 px at the same centre: levels 1 and 2 too, centre 64 +- 3.6 gives
    # the same cells as the 40 px one's: the smaller takes all 8.
    flags = flags_of(cfg, coco([square(44, 44, 84, 84),
                                square(46, 46, 82, 82)]))
    big, small = flags[1], flags[2]
    assert big['region_cells'] == 8 and big['owned_cells'] == 0
    assert big['displaced'] and big['owners'] == [2]
    assert not small['displaced'] and small['owned_cells'] == 8


def test_an_object_in_no_range_is_unassigned_not_displaced(cfg):
    cfg = cfg.copy()
    cfg.model.mask_head.scale_ranges = ((4, 24), (12, 48), (24, 96),
                                        (48, 192), (96, 512))
    result = displaced_instances(
        cfg, coco([square(60, 60, 62, 62), square(10, 10, 20, 20)]))
    tiny, other = result['instances'][1], result['instances'][2]
    assert tiny['unassigned'] and not tiny['displaced']
    assert tiny['levels'] == [] and tiny['region_cells'] == 0
    assert not other['unassigned']
    summary = result['summary']
    assert (summary['instances'], summary['unassigned'],
            summary['displaced']) == (2, 1, 0)
    assert summary['displaced_of_assigned'] == 0.0


def test_a_mask_that_vanishes_at_the_input_size_is_unassigned(cfg):
    # 256 px -> 128 px, nearest: pixel (101, 101) is not sampled.
    dot = np.zeros((256, 256), np.uint8)
    dot[101, 101] = 1
    flags = flags_of(cfg, coco([dot, square(20, 20, 40, 40, size=256)],
                               size=256))
    assert flags[1]['unassigned'] and not flags[2]['unassigned']


def test_the_image_is_resized_like_the_test_pipeline(cfg):
    # The first layout at 256 px, as polygons: halved by the Resize.
    def poly(x0, y0, x1, y1):
        return [[x0, y0, x1, y0, x1, y1, x0, y1]]
    data = coco([], size=256)
    data['images'] = [dict(id=1, height=256, width=256)]
    data['annotations'] = [
        dict(id=7, image_id=1, category_id=1, iscrowd=0,
             segmentation=poly(120, 120, 140, 140)),
        dict(id=8, image_id=1, category_id=1, iscrowd=0,
             segmentation=poly(124, 120, 144, 140))
    ]
    flags = flags_of(cfg, data)
    assert flags[7]['levels'] == flags[8]['levels'] == [0]
    assert sum(f['displaced'] for f in flags.values()) == 1


def test_non_square_images_are_padded(cfg):
    # 90 x 160 -> 72 x 128, padded to 96 x 128.
    flags = flags_of(cfg, coco([square(10, 10, 30, 30, 90, 160),
                                square(120, 50, 140, 70, 90, 160)],
                               size=90, width=160))
    assert not any(f['displaced'] or f['unassigned']
                   for f in flags.values())


def test_empty_images_and_crowd_annotations_are_skipped(cfg):
    # Image 2 repeats the first layout with the winner's twin as iscrowd.
    data = coco([], [square(60, 60, 70, 70),
                     (square(62, 60, 72, 70), dict(iscrowd=1))])
    result = displaced_instances(cfg, data)
    assert list(result['instances']) == [1]
    assert not result['instances'][1]['displaced']
    assert result['summary']['images'] == 2
    assert result['summary']['instances'] == 1
    empty = displaced_instances(cfg, coco([], []))
    assert empty['instances'] == {}
    assert empty['summary']['displaced_fraction'] is None


def test_crowded_and_isolated_are_split_as_the_crowd_metric(cfg):
    data = coco([square(60, 60, 70, 70), square(62, 60, 72, 70),
                 square(100, 100, 110, 110)])
    summary = displaced_instances(cfg, data)['summary']
    assert summary['crowded']['instances'] == 2
    assert summary['crowded']['displaced'] == 1
    assert summary['isolated'] == dict(
        instances=1, displaced=0, unassigned=0, centre_lost=0,
        displaced_fraction=0.0, displaced_of_assigned=0.0)
    assert 'crowded' not in displaced_instances(
        cfg, data, crowd_dist=None)['summary']


def test_flags_agree_with_the_heads_own_targets(cfg, tmp_path):
    """On generated dense scenes, the cells each instance keeps and its
    centre cells are those of one _get_targets_single call on the image."""
    ann = generate_coco_split(str(tmp_path), 'val', 3, seed=5,
                              **VARIANTS['dense'])
    dense = variant_config(CONFIG, 'dense')
    head = build_assigner(dense)
    data = load_coco(ann)
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    for img in data['images']:
        anns = [a for a in data['annotations'] if a['image_id'] == img['id']]
        masks = np.stack([mask_utils.decode(a['segmentation'])
                          for a in anns])
        flags = image_flags(head, masks, resize_of(dense), 32)
        gt = InstanceData(labels=torch.zeros(len(anns), dtype=torch.long),
                          masks=BitmapMasks(masks, 144, 144))
        _, owner, centres, *_ = head._get_targets_single(
            gt, dict(batch_input_shape=(160, 160)), (40, 40))
        for i, f in enumerate(flags):
            assert f['owned_cells'] == int((owner == i).sum())
            assert f['centre_lost'] == bool((centres[i] == -1).all())
            assert f['displaced'] == (f['owned_cells'] == 0)


def test_bad_input_names_the_file_and_field(cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        load_coco(str(tmp_path / 'nope.json'))
    path = tmp_path / 'bad.json'
    path.write_text('{not json')
    with pytest.raises(ValueError, match='bad.json.*not a JSON'):
        load_coco(str(path))
    for drop in ('annotations', 'images'):
        data = coco([square(10, 10, 20, 20)])
        del data[drop]
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=f"bad.json: no '{drop}'"):
            load_coco(str(path))
    data = coco([square(10, 10, 20, 20)])
    data['annotations'][0]['image_id'] = 42
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError,
                       match='bad.json: annotation 1 has image_id 42'):
        load_coco(str(path))
    data = coco([square(10, 10, 20, 20)])
    del data['images'][0]['height']
    with pytest.raises(ValueError, match=r"images\[0\] has no \['height'\]"):
        displaced_instances(cfg, data)
    data = coco([square(10, 10, 20, 20, size=64)])
    data['images'][0].update(height=128, width=128)
    with pytest.raises(ValueError, match='annotation 1: segmentation size'):
        displaced_instances(cfg, data)
    with pytest.raises(ValueError, match='no model.mask_head'):
        build_assigner(Config(dict(model=dict(type='X'))))
    with pytest.raises(ValueError, match='unknown variant'):
        variant_config(CONFIG, 'nope')


def test_variant_config_is_the_protocols():
    dense = variant_config(CONFIG, 'dense')
    assert resize_of(dense) == dict(scale=(144, 144), keep_ratio=True)
    assert dense.model.mask_head.num_classes == 4


def test_the_crowded_variant_displaces_many_and_demo_few(cfg, tmp_path):
    """A few images only: the full splits measure ~24 % (val) and ~23 %
    (test), demo and dense < 1 % (docs/experiments/displaced.md)."""
    crowded = generate_coco_split(str(tmp_path / 'c'), 'val', 6, seed=1,
                                  **VARIANTS['crowded'])
    demo = generate_coco_split(str(tmp_path / 'd'), 'val', 6, seed=1)
    frac = displaced_instances(variant_config(CONFIG, 'crowded'), crowded,
                               crowd_dist=None)['summary']
    assert frac['displaced_fraction'] >= 0.12
    assert displaced_instances(cfg, demo, crowd_dist=None)['summary'][
        'displaced_fraction'] < 0.05


def test_cli_prints_the_fraction_and_writes_per_annotation_flags(
        tmp_path, capsys):
    tool = load_tool('analysis_tools/count_displaced')
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(coco([square(60, 60, 70, 70),
                                    square(62, 60, 72, 70),
                                    square(100, 100, 110, 110)])))
    out = tmp_path / 'flags.json'
    tool.main([CONFIG, str(ann), '--out', str(out)])
    printed = capsys.readouterr().out
    assert '3 instances: 1 displaced (33.3 %)' in printed
    assert 'crowded' in printed and 'isolated' in printed
    written = json.loads(out.read_text())
    assert sorted(written['displaced']) == ['1', '2', '3']
    assert sum(written['displaced'].values()) == 1
    assert written['summary']['displaced'] == 1
    assert written['instances']['3']['owners'] == []
    # Centres of mass of the pixels [x0, x1) x [y0, y1): (x0 + x1) / 2.
    assert [written['instances'][i]['centre'] for i in '123'] == [
        [65.0, 65.0], [67.0, 65.0], [105.0, 105.0]]


def test_the_protocol_scores_displaced_instances_on_crowded(tmp_path):
    """On the crowded variant the protocol's test and val evaluators are
    DisplacedCocoMetric with the split's own flags, which
    ensure_variant_data writes with the reference config's assignment."""
    from mmengine.registry import init_default_scope

    from mmdet.datasets.api_wrappers import COCO
    from mmdet.registry import METRICS
    from mmdet_pep_tools.variant_data import ensure_variant_data
    from mmdet_pep_tools.training import on_val_split
    cfg = variant_config(CONFIG, 'crowded')
    test_ev = cfg.test_evaluator
    assert test_ev.type == 'DisplacedCocoMetric'
    assert test_ev.displaced_file == displaced_file(test_ev.ann_file)
    assert test_ev.displaced_file.endswith('annotations/displaced_test.json')
    val_ev = on_val_split(cfg, 'ckpt.pth').test_evaluator
    assert val_ev.displaced_file.endswith('annotations/displaced_val.json')
    assert variant_config(CONFIG, 'demo').test_evaluator.type == \
        'CrowdCocoMetric'

    # A tiny crowded data set: its flags are written, and the metric reads
    # them for every evaluated annotation.
    root = str(tmp_path / 'synthetic_crowded')
    for split, n in (('train', 1), ('val', 2), ('test', 2)):
        generate_coco_split(root, split, n, seed=3, **VARIANTS['crowded'])
    ensure_variant_data(root, 'crowded')
    ann = osp.join(root, 'annotations', 'instances_test.json')
    written = json.loads(open(displaced_file(ann)).read())
    assert written['variant'] == 'crowded'
    num_anns = len(json.loads(open(ann).read())['annotations'])
    assert len(written['displaced']) == num_anns
    assert written['summary']['displaced'] == sum(
        written['displaced'].values())
    init_default_scope('mmdet')
    metric = METRICS.build(dict(test_ev, ann_file=ann,
                                displaced_file=displaced_file(ann)))
    metric._coco_api = COCO(ann)
    metric.cat_ids = metric._coco_api.get_cat_ids()
    metric.img_ids = metric._coco_api.get_img_ids()
    subsets = metric.displaced_subsets()
    assert len(subsets['displaced']) == written['summary']['displaced']
    assert len(subsets['displaced']) + len(subsets['placed']) == num_anns
