"""CheckedCocoDataset: the checks CocoDataset lacks, and nothing else
changes."""
import json
import os.path as osp

import pytest

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmdet_pep.datasets import CheckedCocoDataset, generate_coco_split

CLASSES = ('disc', 'square', 'triangle')


def write_ann(tmp_path, categories, annotations, images=None):
    images = images if images is not None else [
        dict(id=1, file_name='a.png', height=32, width=32),
        dict(id=2, file_name='b.png', height=32, width=32)
    ]
    for i, ann in enumerate(annotations, 1):
        ann.setdefault('id', i)
        ann.setdefault('bbox', [2., 2., 10., 10.])
        ann.setdefault('area', 100.)
        ann.setdefault('iscrowd', 0)
    path = str(tmp_path / 'ann.json')
    with open(path, 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)
    return path


def cats(*names, first_id=1):
    return [dict(id=first_id + i, name=n) for i, n in enumerate(names)]


def build(path, classes=CLASSES, type='CheckedCocoDataset', **kwargs):
    kwargs.setdefault('data_prefix', dict(img=''))
    return DATASETS.build(
        dict(type=type, ann_file=path, metainfo=dict(classes=classes),
             pipeline=[], **kwargs))


def labels(ds):
    return [[i['bbox_label'] for i in ds.get_data_info(k)['instances']]
            for k in range(len(ds))]


def test_registered_and_same_as_coco_dataset_on_good_data(tmp_path):
    ann = generate_coco_split(str(tmp_path), 'train', 3, image_size=64)
    kwargs = dict(ann_file=ann, data_prefix=dict(img=str(tmp_path)),
                  filter_cfg=dict(filter_empty_gt=True, min_size=4))
    ours = DATASETS.build(
        dict(type='CheckedCocoDataset', metainfo=dict(classes=CLASSES),
             pipeline=[], **kwargs))
    ref = CocoDataset(metainfo=dict(classes=CLASSES), pipeline=[], **kwargs)
    assert isinstance(ours, CheckedCocoDataset)
    assert len(ours) == len(ref) == 3
    for i in range(3):
        assert ours.get_data_info(i) == ref.get_data_info(i)


def test_unknown_category_id_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES), [
        dict(image_id=1, category_id=1),
        dict(image_id=2, category_id=0, id=42)
    ])
    with pytest.raises(ValueError, match=r"annotation id 42 of image id 2 "
                       r"\('b.png'\) has category_id 0.*\[1, 2, 3\]"):
        build(path)
    assert labels(build(path, type='CocoDataset')) == [[0], []]


@pytest.mark.parametrize('part,index,key,match', [
    ('annotations', 1, 'category_id', r'annotation #1 \(id 2\) has no '
     'category_id'),
    ('annotations', 0, 'image_id', r'annotation #0 \(id 1\) has no image_id'),
    ('images', 1, 'height', r"image #1 \(id 2\) has no height"),
    ('categories', 2, 'name', r'category #2 \(id 3\) has no name'),
])
def test_missing_keys_are_errors(tmp_path, part, index, key, match):
    path = write_ann(tmp_path, cats(*CLASSES),
                     [dict(image_id=1, category_id=1),
                      dict(image_id=2, category_id=2)])
    with open(path) as f:
        coco = json.load(f)
    del coco[part][index][key]
    with open(path, 'w') as f:
        json.dump(coco, f)
    with pytest.raises(ValueError, match='ann.json: ' + match):
        build(path)


def test_annotation_of_unknown_image_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES),
                     [dict(image_id=1, category_id=1),
                      dict(image_id=9, category_id=1)])
    with pytest.raises(ValueError, match='annotation id 2 refers to image '
                       'id 9, which is not in images'):
        build(path)
    assert labels(build(path, type='CocoDataset')) == [[0], []]


def test_misspelt_class_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES), [
        dict(image_id=1, category_id=2),
        dict(image_id=2, category_id=3)
    ])
    wrong = ('disc', 'sqaure', 'triangle')
    with pytest.raises(ValueError, match=r"\['sqaure'\] are not categories"):
        build(path, classes=wrong)
    # What CocoDataset does: triangles silently become label 1 ('sqaure').
    assert labels(build(path, classes=wrong, type='CocoDataset')) == [[],
                                                                      [1]]


def test_class_order_differing_from_the_file_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES),
                     [dict(image_id=1, category_id=1)])
    with pytest.raises(ValueError, match='order'):
        build(path, classes=('square', 'disc', 'triangle'))


def test_duplicate_category_name_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats('disc', 'square', 'triangle', 'disc'),
                     [dict(image_id=1, category_id=1)])
    with pytest.raises(ValueError, match=r"\['disc'\].*more than once"):
        build(path)


def test_subset_of_classes_is_allowed(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES), [
        dict(image_id=1, category_id=1),
        dict(image_id=1, category_id=3),
        dict(image_id=2, category_id=3)
    ])
    ds = build(path, classes=('disc', ))
    assert labels(ds) == [[0], []]
    assert dict(ds._left_out) == {'triangle': 2}


def test_file_without_images_still_checks_class_names(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES), [], images=[])
    with pytest.raises(ValueError, match='match 2 categories'):
        build(path, classes=('disc', 'sqaure', 'triangle'))


def test_no_image_left_is_an_error(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES), [], images=[])
    with pytest.raises(ValueError, match=r'no images to use \(0 in the file'):
        build(path)
    path = write_ann(tmp_path, cats(*CLASSES), [])  # 2 images, no objects
    assert len(build(path)) == 2
    with pytest.raises(ValueError, match=r'no images to use \(2 in the file, '
                       'filter_cfg=.*filter_empty_gt'):
        build(path, filter_cfg=dict(filter_empty_gt=True))
    with pytest.raises(ValueError, match='need at least one array'):
        build(path, filter_cfg=dict(filter_empty_gt=True),
              type='CocoDataset')


def test_pipeline_error_is_tagged_with_the_image(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES),
                     [dict(image_id=1, category_id=1)])

    def broken(results):
        raise ZeroDivisionError('boom')

    ds = DATASETS.build(
        dict(type='CheckedCocoDataset', ann_file=path, test_mode=True,
             data_prefix=dict(img='imgs'), metainfo=dict(classes=CLASSES),
             pipeline=[broken]))
    with pytest.raises(ZeroDivisionError, match='boom') as info:
        ds[1]
    assert info.value.__notes__ == [
        "CheckedCocoDataset: the pipeline failed on image "
        f"{osp.join('imgs', 'b.png')!r} (index 1)"
    ]


def test_pipeline_error_naming_the_image_is_not_tagged(tmp_path):
    path = write_ann(tmp_path, cats(*CLASSES),
                     [dict(image_id=1, category_id=1)])

    def broken(results):
        raise OSError(f'cannot read {results["img_path"]}')

    ds = DATASETS.build(
        dict(type='CheckedCocoDataset', ann_file=path, test_mode=True,
             data_prefix=dict(img='imgs'), metainfo=dict(classes=CLASSES),
             pipeline=[broken]))
    with pytest.raises(OSError, match='a.png') as info:
        ds[0]
    assert not getattr(info.value, '__notes__', None)
