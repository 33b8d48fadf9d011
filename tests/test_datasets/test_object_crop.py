"""RandomObjectCenteredCrop (crops centred on an object, shifted into the
image) and RandomSubsetSampler (epochs of a fixed number of random
samples)."""
import numpy as np
import pytest

from mmdet.registry import DATA_SAMPLERS, TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks


def results(objects, shape=(100, 200), ignore=None):
    """``objects``: (label, y1, y2, x1, x2) rectangles."""
    h, w = shape
    masks = np.zeros((len(objects), h, w), dtype=np.uint8)
    boxes = []
    for i, (_, y1, y2, x1, x2) in enumerate(objects):
        masks[i, y1:y2, x1:x2] = 1
        boxes.append([x1, y1, x2, y2])
    return dict(
        img=np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3),
        img_shape=shape,
        gt_bboxes=HorizontalBoxes(np.array(boxes, np.float32).reshape(-1, 4)),
        gt_bboxes_labels=np.array([o[0] for o in objects], np.int64),
        gt_ignore_flags=np.array(ignore or [False] * len(objects)),
        gt_masks=BitmapMasks(masks, h, w))


def crop(**kwargs):
    return TRANSFORMS.build(
        dict(type='RandomObjectCenteredCrop', crop_size=(40, 20), **kwargs))


def test_centred_on_the_object_centroid():
    """A 10 x 6 object with centroid (y, x) = (54.5, 72.5): a 20 x 40 crop
    (height x width) starts at round(54.5 - 10) = 44 (round half to even)
    and round(72.5 - 20) = 52."""
    out = crop()(results([(0, 50, 60, 70, 76)]))
    assert out['img_shape'] == (20, 40)
    assert out['homography_matrix'][:2, 2].tolist() == [-52, -44]
    assert out['gt_masks'].masks[0].sum() == 60
    assert out['gt_bboxes'].tensor.tolist() == [[18., 6., 24., 16.]]


def test_shifted_into_the_image_at_its_borders():
    out = crop()(results([(0, 0, 4, 195, 200)]))
    assert out['homography_matrix'][:2, 2].tolist() == [-160, 0]
    assert out['img_shape'] == (20, 40)


def test_only_the_chosen_classes_and_no_ignored_object():
    data = results([(0, 10, 20, 10, 20), (1, 70, 80, 150, 160),
                    (1, 10, 20, 100, 110)],
                   ignore=[False, False, True])
    # Only the second object: centroid (74.5, 154.5), offsets
    # round(64.5) = 64 and round(134.5) = 134.
    for _ in range(10):
        out = crop(classes=[1])(dict(data))
        assert out['homography_matrix'][:2, 2].tolist() == [-134, -64]


def test_none_without_an_eligible_object():
    assert crop(classes=[2])(results([(0, 10, 20, 10, 20)])) is None
    assert crop()(results([])) is None
    assert crop()(results([(0, 10, 20, 10, 20)], ignore=[True])) is None


def test_sampler_draws_fixed_size_epochs_deterministically():
    dataset = list(range(7))
    sampler = DATA_SAMPLERS.build(
        dict(type='RandomSubsetSampler', num_samples=30),
        default_args=dict(dataset=dataset, seed=3))
    first = list(sampler)
    assert len(first) == len(sampler) == 30
    assert set(first) <= set(dataset) and len(set(first)) > 3
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_splits_one_draw_over_the_ranks(monkeypatch):
    import mmdet_pep.datasets.object_crop as module
    dataset = list(range(11))
    full = list(module.RandomSubsetSampler(dataset, 9, seed=0))
    parts = []
    for rank in range(2):
        monkeypatch.setattr(module, 'get_dist_info', lambda r=rank: (r, 2))
        sampler = module.RandomSubsetSampler(dataset, 9, seed=0)
        parts.append(list(sampler))
        assert len(sampler) == len(parts[-1])
    assert parts[0] == full[0::2] and parts[1] == full[1::2]
    with pytest.raises(ValueError, match='empty'):
        module.RandomSubsetSampler([], 9, seed=0)
