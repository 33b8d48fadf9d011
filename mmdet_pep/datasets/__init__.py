from .checks import CheckedCocoDataset, PEPCocoDataset
from .object_crop import (ObjectUniformSampler, RandomObjectCenteredCrop,
                          RandomSubsetSampler)
from .synthetic import (CLASSES, dataset_statistics, generate_coco_split,
                        generate_dataset, metainfo)
from .synthetic_video import (ensure_vis_dataset, generate_vis_dataset,
                              generate_vis_split)
from .transforms import (CheckedLoadImageFromFile, CorruptImageError,
                         PEPLoadImageFromFile)
from .video_checks import (CheckedLoadFrameFromFile, CheckedYouTubeVISDataset,
                           check_video_annotations)

__all__ = [
    'CLASSES', 'dataset_statistics', 'generate_coco_split', 'generate_dataset',
    'metainfo', 'ensure_vis_dataset', 'generate_vis_dataset',
    'generate_vis_split', 'CorruptImageError', 'CheckedCocoDataset',
    'CheckedLoadImageFromFile', 'RandomObjectCenteredCrop',
    'RandomSubsetSampler', 'ObjectUniformSampler', 'CheckedYouTubeVISDataset',
    'CheckedLoadFrameFromFile', 'check_video_annotations',
    # Deprecated names (removed in 0.3.0).
    'PEPCocoDataset', 'PEPLoadImageFromFile'
]
