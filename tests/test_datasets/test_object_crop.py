"""RandomObjectCenteredCrop (crops centred on an object, shifted into the
image), RandomSubsetSampler (epochs of a fixed number of random samples)
and ObjectUniformSampler (the same, uniform over objects)."""
from collections import Counter

import numpy as np
import pytest
from mmengine.dataset import BaseDataset

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


# ObjectUniformSampler --------------------------------------------------------
#
# Four images with 1, 3, 0 and 6 eligible objects of class 0; image 1 also
# has an ignored one, image 2 only an ignored and a class-1 object, image 3
# a class-1 one. Objects sit side by side: object j of an image is the
# 10 x 5 rectangle at x = 20 + 15 j, whose crop starts at x = 2 + 15 j.
IMAGES = [
    [(0, False)],
    [(0, False), (0, True), (0, False), (0, False)],
    [(0, True), (1, False)],
    [(1, False)] + [(0, False)] * 6,
]
OBJECTS = [1, 3, 0, 6]


def rectangles(image):
    return [(label, 40, 50, 20 + 15 * j, 25 + 15 * j)
            for j, (label, _) in enumerate(image)]


class FakeDataset(BaseDataset):
    METAINFO = dict(classes=('car', 'person'))

    def __init__(self, images, **kwargs):
        self.images = images
        super().__init__(pipeline=[], **kwargs)

    def load_data_list(self):
        return [
            dict(img_id=i,
                 instances=[
                     dict(bbox=[x1, y1, x2, y2], bbox_label=label,
                          ignore_flag=int(ignore))
                     for (label, y1, y2, x1, x2), (_, ignore) in zip(
                         rectangles(image), image)
                 ]) for i, image in enumerate(self.images)
        ]


def object_sampler(num_samples, seed=0, images=IMAGES, classes=(0, )):
    return DATA_SAMPLERS.build(
        dict(type='ObjectUniformSampler', num_samples=num_samples,
             classes=classes),
        default_args=dict(dataset=FakeDataset(images, lazy_init=True),
                          seed=seed))


def test_object_sampler_draws_images_in_proportion_to_their_objects():
    """20000 draws: each image's frequency f_i is Binomial(n, p_i) / n with
    p_i = 1, 3, 0, 6 / 10, so its std is at most sqrt(0.25 / n) = 0.0035;
    0.02 is over 5.6 std, a false failure under 1e-7 for any seed."""
    sampler = object_sampler(20000)
    assert sampler.dataset._fully_initialized
    draws = Counter(sampler)
    assert len(sampler) == sum(draws.values()) == 20000
    assert 2 not in draws
    for image, objects in enumerate(OBJECTS):
        assert draws[image] / 20000 == pytest.approx(objects / 10, abs=0.02)


def test_object_sampler_and_crop_draw_each_object_uniformly():
    """Each of the 10 objects after the crop's choice: p = 0.1, the std of
    its frequency over 6000 draws sqrt(0.09 / 6000) = 0.0039; 0.02 is over
    5 std."""
    transform = crop(classes=[0])
    data = [results(rectangles(image), ignore=[i for _, i in image])
            for image in IMAGES]
    chosen = Counter()
    for image in object_sampler(6000, seed=1):
        out = transform(dict(data[image]))
        chosen[image, int(-out['homography_matrix'][0, 2])] += 1
    eligible = {(i, 2 + 15 * j)
                for i, image in enumerate(IMAGES)
                for j, (label, ignore) in enumerate(image)
                if label == 0 and not ignore}
    assert len(eligible) == 10 and set(chosen) == eligible
    for key in eligible:
        assert chosen[key] / 6000 == pytest.approx(0.1, abs=0.02)


def test_object_sampler_counts_every_class_without_classes():
    """Without ``classes`` the class-1 objects count: 1, 3, 1, 7 of 12."""
    sampler = object_sampler(12000, classes=None)
    draws = Counter(sampler)
    for image, objects in enumerate([1, 3, 1, 7]):
        assert draws[image] / 12000 == pytest.approx(objects / 12, abs=0.02)


def test_object_sampler_is_deterministic_in_seed_and_epoch():
    first = list(object_sampler(50, seed=3))
    assert list(object_sampler(50, seed=3)) == first
    assert list(object_sampler(50, seed=4)) != first
    sampler = object_sampler(50, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_object_sampler_splits_one_draw_over_the_ranks(monkeypatch):
    import mmdet_pep.datasets.object_crop as module
    full = list(object_sampler(9))
    parts = []
    for rank in range(2):
        monkeypatch.setattr(module, 'get_dist_info', lambda r=rank: (r, 2))
        sampler = object_sampler(9)
        parts.append(list(sampler))
        assert len(sampler) == len(parts[-1]) == (5, 4)[rank]
    assert parts[0] == full[0::2] and parts[1] == full[1::2]


def test_object_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match='num_samples'):
        object_sampler(0)
    with pytest.raises(ValueError, match='eligible'):
        object_sampler(10, images=[[(0, True)], [(1, False)], []])
    for classes in ([2], [-1], [0.5]):
        with pytest.raises(ValueError, match='classes'):
            object_sampler(10, classes=classes)
