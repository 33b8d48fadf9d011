"""mmdet_pep/deploy/model.py: DeployModel preprocesses like mmdet's data
preprocessor and returns the four outputs in fixed dtypes."""
from types import SimpleNamespace

import torch
from torch import nn

from deploy_testing import TINY_CONFIG
from mmdet_pep.deploy import OUTPUT_NAMES, DeployModel, build_deploy_model


def test_deploy_model_normalises_and_pads_like_the_preprocessor():
    """DeployModel.preprocess equals DetDataPreprocessor on a 50 x 70
    image (BGR -> RGB, mean / std, zero padding to 32)."""
    deploy = build_deploy_model(TINY_CONFIG)
    image = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    ref = deploy.detector.data_preprocessor(
        dict(inputs=[image], data_samples=None), False)['inputs']
    got = deploy.preprocess(image[None].float())
    assert got.shape == ref.shape == (1, 3, 64, 96)
    torch.testing.assert_close(got, ref)


class _Detector(nn.Module):
    """A stand-in detector: a preprocessor with no flip, no normalisation
    and padding to 8 with 7; its features are the padded image."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = SimpleNamespace(pad_size_divisor=8,
                                                 pad_value=7)
        self.conv = nn.Conv2d(3, 3, 1)

    def extract_feat(self, x):
        return x


def _postprocess(detector, feats, img_h, img_w):
    """Two instances in loose dtypes, and what DeployModel was given."""
    _postprocess.seen = (feats, img_h, img_w)
    return (torch.zeros(2, 4, dtype=torch.float64), torch.ones(2).half(),
            torch.tensor([0, 2], dtype=torch.int32),
            torch.ones(2, img_h, img_w, dtype=torch.bool))


def test_forward_pads_and_casts_the_outputs():
    detector = _Detector().train()
    model = DeployModel(detector, _postprocess)
    # The wrapper and the detector are in eval mode.
    assert not model.training and not detector.training
    image = torch.full((1, 3, 10, 13), 200.)
    boxes, scores, labels, masks = model(image)
    feats, img_h, img_w = _postprocess.seen
    # No flip, no normalisation: the image as given, padded to 16 x 16.
    assert feats.shape == (1, 3, 16, 16)
    assert (feats[..., :10, :13] == 200).all()
    assert (feats[..., 10:, :] == 7).all() and (feats[..., 13:] == 7).all()
    # The input size, not the padded one, reaches the post-processing.
    assert (img_h, img_w) == (10, 13)
    assert [t.dtype for t in (boxes, scores, labels, masks)] == [
        torch.float32, torch.float32, torch.int64, torch.uint8
    ]
    assert masks.shape == (2, 10, 13) and len(OUTPUT_NAMES) == 4
