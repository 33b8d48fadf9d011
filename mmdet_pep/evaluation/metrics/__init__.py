from .crowd_coco_metric import (CrowdCocoMetric, SubsetCOCOeval,
                                crowded_instances)
from .youtube_vis_metric import PEPYouTubeVISMetric

__all__ = [
    'CrowdCocoMetric', 'SubsetCOCOeval', 'crowded_instances',
    'PEPYouTubeVISMetric'
]
