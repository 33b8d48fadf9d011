from mmdet.models.detectors.single_stage_instance_seg import \
    SingleStageInstanceSegmentor
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class PEP(SingleStageInstanceSegmentor):
    """`Perceive, Excavate and Purify: A Novel Object Mining Framework for
    Instance Segmentation <https://arxiv.org/abs/2304.08826>`_

    Backbone + FPN (the paper's five stages s = 1..5) and a
    :class:`~mmdet_pep.models.dense_heads.PEPHead` as ``mask_head``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 mask_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(
            backbone=backbone,
            neck=neck,
            mask_head=mask_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
