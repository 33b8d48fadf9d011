from .checks import PEPCocoDataset
from .object_crop import RandomObjectCenteredCrop, RandomSubsetSampler
from .synthetic import (CLASSES, dataset_statistics, generate_coco_split,
                        generate_dataset, metainfo)
from .transforms import CorruptImageError, PEPLoadImageFromFile

__all__ = [
    'CLASSES', 'dataset_statistics', 'generate_coco_split', 'generate_dataset',
    'metainfo', 'CorruptImageError', 'PEPCocoDataset', 'PEPLoadImageFromFile',
    'RandomObjectCenteredCrop', 'RandomSubsetSampler'
]
