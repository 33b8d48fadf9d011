from .synthetic import (CLASSES, dataset_statistics, generate_coco_split,
                        generate_dataset, metainfo)

__all__ = [
    'CLASSES', 'dataset_statistics', 'generate_coco_split', 'generate_dataset',
    'metainfo'
]
