"""Crops centred on an object, and epochs of a fixed number of random
samples: SpatialEmbeddings' training data."""
import math
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import DATA_SAMPLERS, TRANSFORMS


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
    of the data set; here an image is drawn, then one of its objects, so
    objects of crowded images are drawn less often. Without an eligible
    object the transform returns None and the data set draws another image,
    as the official set has no crop there.

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
        eligible = np.ones(len(labels), dtype=bool)
        if results.get('gt_ignore_flags') is not None:
            eligible &= ~results['gt_ignore_flags'].astype(bool)
        if self.classes is not None:
            eligible &= np.isin(labels, list(self.classes))
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
    split over the ranks: SpatialEmbeddings' epoch of 3000 random crops
    (its data set's ``size``), whatever the data set's length.

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
            raise ValueError('RandomSubsetSampler: the data set is empty')
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
        indices = torch.randint(
            len(self.dataset), (self.total_size, ), generator=g).tolist()
        return iter(indices[self.rank::self.world_size])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
