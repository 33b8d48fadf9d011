from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class SipMask(SingleStageDetector):
    """`SipMask: Spatial Information Preservation for Fast Image and Video
    Instance Segmentation <https://arxiv.org/abs/2007.14772>`_ (ECCV 2020).

    Backbone + FPN (P3-P7) and a
    :class:`~mmdet_pep.models.dense_heads.SipMaskHead` as ``bbox_head``,
    which returns boxes and masks together, as mmdet's RTMDet-Ins does; the
    arguments are :class:`SingleStageDetector`'s.
    """
