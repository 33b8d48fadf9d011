from .crowd_coco_metric import (CrowdCocoMetric, SubsetCOCOeval,
                                crowded_instances)

__all__ = ['CrowdCocoMetric', 'SubsetCOCOeval', 'crowded_instances']
