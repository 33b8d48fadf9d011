from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class EmbedMask(SingleStageDetector):
    """`EmbedMask: Embedding Coupling for Instance Segmentation
    <https://arxiv.org/abs/1912.01954>`_ (IJCAI 2021).

    Backbone + FPN (P3-P7) and an
    :class:`~mmdet_pep.models.dense_heads.EmbedMaskHead` as ``bbox_head``,
    which returns boxes and masks together, as mmdet's RTMDet-Ins does; the
    arguments are :class:`SingleStageDetector`'s.
    """
