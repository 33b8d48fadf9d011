from mmdet.models.detectors.single_stage_instance_seg import \
    SingleStageInstanceSegmentor
from mmdet.registry import MODELS


@MODELS.register_module()
class SpatialEmbeddings(SingleStageInstanceSegmentor):
    """`Instance Segmentation by Jointly Optimizing Spatial Embeddings and
    Clustering Bandwidth <https://arxiv.org/abs/1906.11109>`_ (CVPR 2019).

    Proposal-free: a backbone (ERFNet's encoder, or a ResNet + FPN), no box
    head, and a :class:`~mmdet_pep.models.dense_heads.SpatialEmbHead` as
    ``mask_head``; the arguments are
    :class:`SingleStageInstanceSegmentor`'s.
    """
