from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class EmbedMask(SingleStageDetector):
    """`EmbedMask: Embedding Coupling for Instance Segmentation
    <https://arxiv.org/abs/1912.01954>`_ (IJCAI 2021).

    Backbone + FPN (P3-P7) and an
    :class:`~mmdet_pep.models.dense_heads.EmbedMaskHead` as ``bbox_head``,
    which returns boxes and masks together, as mmdet's RTMDet-Ins does.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
