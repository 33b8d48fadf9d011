"""Crops centred on an object, and epochs of a fixed number of random
samples: SpatialEmbeddings' training data."""
import math
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import DATA_SAMPLERS, TRANSFORMS


def eligible_objects(labels: np.ndarray,
                     ignore_flags: Optional[np.ndarray] = None,
                     classes: Optional[Sequence[int]] = None) -> np.ndarray:
    """Which objects a crop may be centred on: those not ignored (crowd
    regions; the official crops skip Cityscapes' group ids below 1000) and,
    with ``classes``, of one of them.

    The one rule of ``RandomObjectCenteredCrop`` (which chooses among these
    objects) and ``ObjectUniformSampler`` (which counts them per image).

    Args:
        labels (np.ndarray): Label indices, shape (R, ).
        ignore_flags (np.ndarray, optional): Ignore flags, shape (R, ); no
            object is ignored if None.
        classes (Sequence[int], optional): Label indices allowed; every
            class if None.

    Returns:
        np.ndarray: Bool, shape (R, ).
    """
    eligible = np.ones(len(labels), dtype=bool)
    if ignore_flags is not None:
        eligible &= ~np.asarray(ignore_flags).astype(bool)
    if classes is not None:
        eligible &= np.isin(labels, list(classes))
    return eligible


@TRANSFORMS.register_module()
class RandomObjectCenteredCrop(RandomCrop):
    """A ``crop_size`` crop centred on a random object, shifted to stay in
    the image.

    SpatialEmbeddings trains on 512 x 512 crops centred on every object of
    Cityscapes, cut once before training (its ``generate_crops.py``); this
    cuts them on the fly. The centre is the centroid of the object's mask
    (of its box without masks). Everything else (boxes, masks, labels,
    ignore flags, the homography) is cropped by mmdet's ``RandomCrop``.

    The official crops are one per object, drawn uniformly over all objects
    of the data set. This transform draws one of the image's eligible
    objects (:func:`eligible_objects`, with a non-empty mask) uniformly;
    after ``ObjectUniformSampler``, which draws images in proportion to
    their eligible objects, the draw is the official one:
    P(object) = (n_i / N) (1 / n_i) = 1 / N for an object of an image with
    n_i of the N objects. After a sampler uniform over images
    (``RandomSubsetSampler``) an object of one of I images, with n_i
    objects, comes with probability 1 / (I n_i) instead: crowded images'
    objects less often. Without an eligible object the transform returns None and the
    data set draws another image, as the official set has no crop there.

    Args:
        crop_size (tuple[int, int]): (width, height), as ``RandomCrop``.
        classes (Sequence[int], optional): Label indices the centre object
            may have; every class if None.
        recompute_bbox (bool): Boxes from the cropped masks (True) or the
            clipped boxes.
    """

    def __init__(self,
                 crop_size: Tuple[int, int],
                 classes: Optional[Sequence[int]] = None,
                 recompute_bbox: bool = True) -> None:
        super().__init__(
            crop_size,
            crop_type='absolute',
            allow_negative_crop=True,
            recompute_bbox=recompute_bbox)
        self.classes = None if classes is None else set(classes)
        self._centre = None

    def _object_centre(self, results: dict) -> Optional[Tuple[float, float]]:
        """(y, x) centre of a random eligible object, or None."""
        labels = results.get('gt_bboxes_labels')
        if labels is None or not len(labels):
            return None
        eligible = eligible_objects(labels, results.get('gt_ignore_flags'),
                                    self.classes)
        masks = results.get('gt_masks')
        if masks is not None:
            eligible &= masks.areas > 0
        candidates = np.flatnonzero(eligible)
        if not len(candidates):
            return None
        index = int(np.random.choice(candidates))
        if masks is not None:
            ys, xs = np.nonzero(masks[[index]].to_ndarray()[0])
            return float(ys.mean()), float(xs.mean())
        x1, y1, x2, y2 = results['gt_bboxes'].tensor[index].tolist()
        return (y1 + y2) / 2, (x1 + x2) / 2

    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        """Offset that centres the crop on the chosen object, clipped to
        [0, margin]."""
        (cy, cx), (margin_h, margin_w) = self._centre, margin
        crop_h, crop_w = self._crop
        offset_h = int(np.clip(round(cy - crop_h / 2), 0, margin_h))
        offset_w = int(np.clip(round(cx - crop_w / 2), 0, margin_w))
        return offset_h, offset_w

    def transform(self, results: dict) -> Union[dict, None]:
        """Crop ``results`` around one of its objects; None without one."""
        self._centre = self._object_centre(results)
        if self._centre is None:
            return None
        self._crop = self._get_crop_size(results['img'].shape[:2])
        return self._crop_data(results, self._crop, True)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'classes={self.classes}, '
                f'recompute_bbox={self.recompute_bbox})')


@DATA_SAMPLERS.register_module()
class RandomSubsetSampler(Sampler):
    """Epochs of ``num_samples`` indices drawn at random with replacement,
    split over the ranks: SpatialEmbeddings' epoch of 3000 random samples
    (its data set's ``size``), whatever the data set's length; uniform over
    the images (its stage 2 on full images). ``ObjectUniformSampler``
    draws them uniformly over objects instead (``_draw``).

    Deterministic in ``seed`` and the epoch (``set_epoch``), the same on
    every rank before the split, as mmengine's ``DefaultSampler``.

    Args:
        dataset (Dataset): The data set.
        num_samples (int): Samples per epoch over all ranks.
        seed (int, optional): Random seed; a synchronised random one if
            None.
    """

    def __init__(self,
                 dataset,
                 num_samples: int,
                 seed: Optional[int] = None) -> None:
        if num_samples <= 0:
            raise ValueError(f'num_samples must be positive, got {num_samples}')
        if len(dataset) == 0:
            raise ValueError(f'{type(self).__name__}: the data set is empty')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.total_size = num_samples
        self.num_samples = math.ceil((num_samples - self.rank) /
                                     self.world_size)
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        indices = self._draw(g).tolist()
        return iter(indices[self.rank::self.world_size])

    def _draw(self, generator: torch.Generator) -> torch.Tensor:
        """The epoch's ``total_size`` indices over all ranks, uniform over
        the data set."""
        return torch.randint(
            len(self.dataset), (self.total_size, ), generator=generator)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


@DATA_SAMPLERS.register_module()
class ObjectUniformSampler(RandomSubsetSampler):
    """Epochs of ``num_samples`` image indices drawn with replacement, each
    image in proportion to its eligible objects: with
    ``RandomObjectCenteredCrop`` after it, crops uniform over the objects of
    the data set, SpatialEmbeddings' own draw.

    The official training cuts one crop per car of every training image
    before training (davyneven/SpatialEmbeddings
    src/utils/generate_crops.py:32-51) and its data set, on those crops
    (src/train_config.py:29-30: ``type='crops'``, ``size=3000``), draws each
    sample as ``random.randint(0, real_size - 1)`` with ``real_size`` the
    number of crops (src/datasets/CityscapesDataset.py:39, 48): uniform over
    objects, with replacement. Here an image i with n_i of the data
    set's N eligible objects is drawn with probability n_i / N, and the
    crop transform chooses one of its n_i objects uniformly, so each object
    comes with probability (n_i / N) (1 / n_i) = 1 / N. The draw is exact
    integer sampling: a table holding image i n_i times (the official list
    of crops, each replaced by its image), indexed by ``torch.randint``.
    Images without an eligible object are never drawn.

    Objects are counted once, from the data infos (``instances``, before
    the pipeline) with :func:`eligible_objects`, the crop transform's rule;
    ``classes`` must be the transform's. The transform also skips objects
    whose loaded mask is empty: such an object (a polygon too thin to cover
    a pixel) is counted but never chosen: its share goes to its image's
    other objects, or, without any, to an image the data set draws
    uniformly when the transform returns None. The pipeline must keep
    every object up to the crop.

    Seeding, ``set_epoch``, the split over the ranks and the length are
    ``RandomSubsetSampler``'s: the ranks share one draw and take every
    ``world_size``-th index of it.

    Args:
        dataset (BaseDataset): The data set; fully initialised here if it
            is lazy.
        num_samples (int): Samples per epoch over all ranks.
        classes (Sequence[int], optional): Label indices of the objects
            counted; every class if None. As the crop transform's.
        seed (int, optional): Random seed; a synchronised random one if
            None.
    """

    def __init__(self,
                 dataset,
                 num_samples: int,
                 classes: Optional[Sequence[int]] = None,
                 seed: Optional[int] = None) -> None:
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        super().__init__(dataset, num_samples, seed)
        self.classes = self._checked_classes(dataset, classes)
        counts = torch.tensor(self._object_counts(dataset, self.classes))
        if counts.sum() == 0:
            raise ValueError(
                'ObjectUniformSampler: no instance of the data set is '
                'eligible (ignore_flag 0' +
                ('' if classes is None else f', bbox_label in {classes}') +
                ')')
        self._owners = torch.repeat_interleave(
            torch.arange(len(counts)), counts)

    @staticmethod
    def _checked_classes(dataset,
                         classes: Optional[Sequence[int]]) -> Optional[list]:
        """``classes`` as a list, each a label index of ``dataset``."""
        if classes is None:
            return None
        names = getattr(dataset, 'metainfo', {}).get('classes')
        for index in classes:
            if (not isinstance(index, (int, np.integer)) or index < 0
                    or (names is not None and index >= len(names))):
                known = '' if names is None else f' (0-{len(names) - 1})'
                raise ValueError(
                    f'ObjectUniformSampler: classes holds {index!r}, not a '
                    f'class index of the data set{known}')
        return [int(index) for index in classes]

    @staticmethod
    def _object_counts(dataset, classes: Optional[Sequence[int]]) -> List[int]:
        """Eligible objects of each image, shape (I, )."""
        counts = []
        for i in range(len(dataset)):
            instances = dataset.get_data_info(i)['instances']
            labels = np.array([obj['bbox_label'] for obj in instances],
                              dtype=np.int64)
            ignore = np.array([obj.get('ignore_flag', 0) for obj in instances],
                              dtype=bool)
            counts.append(int(eligible_objects(labels, ignore, classes).sum()))
        return counts

    def _draw(self, generator: torch.Generator) -> torch.Tensor:
        """The epoch's ``total_size`` images over all ranks: the owners of
        ``total_size`` objects drawn uniformly with replacement."""
        objects = torch.randint(
            len(self._owners), (self.total_size, ), generator=generator)
        return self._owners[objects]
