from .crowd_coco_metric import (CrowdCocoMetric, SubsetCOCOeval,
                                crowded_instances)
from .displaced_coco_metric import DisplacedCocoMetric, load_displaced
from .vis_diagnosis_metric import (YouTubeVISDiagnosisMetric, frame_recall,
                                   oracle_track_ids)
from .youtube_vis_metric import PEPYouTubeVISMetric, YouTubeVISIDSwitchMetric

__all__ = [
    'CrowdCocoMetric', 'SubsetCOCOeval', 'crowded_instances',
    'DisplacedCocoMetric', 'load_displaced',
    'YouTubeVISIDSwitchMetric', 'YouTubeVISDiagnosisMetric', 'frame_recall',
    'oracle_track_ids',
    # Deprecated name (removed in 0.3.0).
    'PEPYouTubeVISMetric'
]
