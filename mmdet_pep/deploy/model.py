"""A detector as one graph: from an image tensor to final instances.

:class:`DeployModel` wraps a built mmdet detector. Its ``forward`` takes the
image after the test pipeline's resize, as the data preprocessor receives
it, and returns fixed outputs::

    image  (1, 3, H, W) float32, the pipeline's channel order (BGR for
           images read by mmcv), values 0-255
    boxes  (N, 4) float32, x1 y1 x2 y2 in input pixels
    scores (N,) float32
    labels (N,) int64
    masks  (N, H, W) uint8, 0 or 1, at the input size

with N <= ``test_cfg.max_per_img``. Inside the graph: the data
preprocessor's channel flip, mean / std normalisation and padding to
``pad_size_divisor``; the backbone, neck and head; and the head's whole
post-processing (see :mod:`.heads`). Outside it: reading the image, the
resize of the test pipeline and the rescale of the outputs to the original
image size (:mod:`.inferencer`), as in mmdeploy. One image per call.
"""
from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OUTPUT_NAMES = ('boxes', 'scores', 'labels', 'masks')


class NotExportableError(ValueError):
    """The config builds a model that this exporter cannot put in a graph;
    the message names the reason."""


class DeployModel(nn.Module):
    """A detector and its post-processing as one ``nn.Module``.

    Args:
        detector (nn.Module): A built single-stage instance segmentor, in
            eval mode, with ``data_preprocessor``, ``extract_feat`` and a
            mask head (``mask_head`` or ``bbox_head``).
        postprocess (Callable): ``postprocess(detector, feats, img_h,
            img_w)`` -> the four outputs, from :data:`.heads.DEPLOY_HEADS`.
    """

    def __init__(self, detector: nn.Module, postprocess: Callable) -> None:
        super().__init__()
        self.detector = detector.eval()
        self.postprocess = postprocess
        pre = detector.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, '_channel_conversion', False))
        self.normalize = bool(getattr(pre, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', pre.mean.view(1, -1, 1, 1).clone())
            self.register_buffer('std', pre.std.view(1, -1, 1, 1).clone())
        self.divisor = int(getattr(pre, 'pad_size_divisor', 1))
        self.pad_value = float(getattr(pre, 'pad_value', 0))
        # torch.onnx.export restores the wrapper's mode on every child
        # afterwards: the wrapper itself must be in eval mode too.
        self.eval()

    def preprocess(self, image: Tensor) -> Tensor:
        """What :class:`DetDataPreprocessor` does to one image: flip the
        channels, normalise, pad bottom-right to ``pad_size_divisor``."""
        x = image.float()
        if self.bgr_to_rgb:
            x = x.flip(1)
        if self.normalize:
            x = (x - self.mean) / self.std
        h, w = x.shape[-2:]
        d = self.divisor
        pad_h = (h + d - 1) // d * d - h
        pad_w = (w + d - 1) // d * d - w
        return F.pad(x, (0, pad_w, 0, pad_h), value=self.pad_value)

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Args:
            image (Tensor): (1, 3, H, W), see the module docstring.

        Returns:
            tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels``
            (N,) and ``masks`` (N, H, W) uint8.
        """
        img_h, img_w = image.shape[-2:]
        feats = self.detector.extract_feat(self.preprocess(image))
        boxes, scores, labels, masks = self.postprocess(
            self.detector, feats, img_h, img_w)
        return (boxes.float(), scores.float(), labels.long(),
                masks.to(torch.uint8))
