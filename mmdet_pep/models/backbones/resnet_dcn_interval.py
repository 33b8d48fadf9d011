"""ResNet with deformable convs on every n-th block of a stage (SipMask++)."""
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS


@MODELS.register_module()
class ResNetDCNInterval(ResNet):
    """mmdet's ResNet with the stage's ``dcn`` on blocks 0, n, 2n, ... only.

    SipMask++'s backbone: the official fork's ``make_res_layer`` puts the
    deformable conv on the first block of each DCN stage and on every
    block whose index is a multiple of 3, a rule written in its code, not
    its config; mmdet's ResNet puts it on every block of the stage.

    Args:
        dcn_interval (int): n; 1 is mmdet's ResNet.
        **kwargs: :class:`mmdet.models.backbones.ResNet` arguments
            (``dcn``, ``stage_with_dcn``, ...).
    """

    def __init__(self, *args, dcn_interval: int = 3, **kwargs) -> None:
        if dcn_interval < 1:
            raise ValueError(f'dcn_interval must be >= 1, got {dcn_interval}')
        # make_res_layer runs inside ResNet.__init__.
        self.dcn_interval = dcn_interval
        super().__init__(*args, **kwargs)

    def make_res_layer(self, **kwargs):
        """mmdet's stage, its blocks between the DCN ones made without
        DCN."""
        layer = super().make_res_layer(**kwargs)
        if kwargs.get('dcn') is None or self.dcn_interval == 1:
            return layer
        plain = super().make_res_layer(**dict(kwargs, dcn=None))
        for i in range(len(layer)):
            if i % self.dcn_interval:
                layer[i] = plain[i]
        return layer
