"""mmdet_pep/deploy/export.py: which models export, the model built from a
config, and the ONNX file it writes (outputs, metadata, the detector's mode
afterwards)."""
import numpy as np
import pytest
from mmengine.config import Config
from torch import nn

from deploy_testing import TINY_CONFIG, VIDEO_CONFIG
from mmdet_pep.deploy import (NotExportableError, build_deploy_model,
                              check_exportable, export_onnx, supported_heads)
from mmdet_pep.deploy.export import check_config, head_type


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    """The tiny PEP config (initial weights; its score_thr 0 keeps
    detections coming) exported with a dynamic input size."""
    out = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    return export_onnx(build_deploy_model(TINY_CONFIG), out, (64, 64),
                       dynamic=True)


def test_graph_outputs_and_stored_metadata(graph):
    from mmdet_pep.deploy.inferencer import CONFIG_KEY, OrtDetector
    session = OrtDetector(graph)
    assert session.dynamic
    assert session.output_names == ['boxes', 'scores', 'labels', 'masks']
    # Built without a checkpoint: the config's classes, not COCO's.
    assert session.classes() == ['disc', 'square', 'triangle']
    assert 'PEPHead' in session.metadata[CONFIG_KEY]
    outs = session(np.full((64, 96, 3), 40, np.uint8))
    n = len(outs['scores'])
    assert outs['boxes'].shape == (n, 4) and outs['masks'].shape == (n, 64,
                                                                     96)
    assert outs['masks'].dtype == np.uint8 and outs['labels'].dtype == np.int64


def test_supported_heads_are_the_zoo_image_heads():
    assert supported_heads() == [
        'CondInstMaskHead', 'EmbedMaskHead', 'PEPHead', 'SOLOV2Head',
        'SipMaskHead', 'SpatialEmbHead'
    ]


def test_head_type_prefers_the_mask_head():

    class TwoHeads(nn.Module):

        def __init__(self):
            super().__init__()
            self.bbox_head = nn.Identity()
            self.mask_head = nn.Conv2d(1, 1, 1)

    class BoxHeadOnly(nn.Module):

        def __init__(self):
            super().__init__()
            self.bbox_head = nn.Identity()

    assert head_type(TwoHeads()) == 'Conv2d'
    assert head_type(BoxHeadOnly()) == 'Identity'
    assert head_type(nn.Module()) == 'none'


def test_a_head_without_static_postprocessing_is_named():

    class Detector(nn.Module):

        def __init__(self):
            super().__init__()
            self.bbox_head = nn.Conv2d(1, 1, 1)

    with pytest.raises(NotExportableError, match='Conv2d.*exportable heads'):
        check_exportable(Detector())


def test_video_models_are_refused_before_they_are_built():
    with pytest.raises(NotExportableError, match='SipMaskVIS is a video'):
        check_config(Config.fromfile(VIDEO_CONFIG))
    # A tracker around any detector, by its model.detector.
    with pytest.raises(NotExportableError, match='Tracker is a video'):
        check_config(Config(dict(model=dict(type='Tracker', detector={}))))
    check_config(Config.fromfile(TINY_CONFIG))

    class Tracked(nn.Module):

        def __init__(self):
            super().__init__()
            self.mask_head = nn.Identity()
            self.track_head = nn.Identity()

    with pytest.raises(NotExportableError, match='Tracked is a video'):
        check_exportable(Tracked())


def test_missing_config_or_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='config not found: .*x.py'):
        build_deploy_model(str(tmp_path / 'x.py'))
    with pytest.raises(FileNotFoundError,
                       match='checkpoint not found: .*x.pth'):
        build_deploy_model(TINY_CONFIG, str(tmp_path / 'x.pth'))


def test_the_detector_stays_in_eval_mode_after_export(tmp_path):
    """torch.onnx.export restores the exported module's mode on every
    child: a wrapper left in train mode would switch the detector's BN to
    batch statistics for every later eager call."""
    deploy = build_deploy_model(TINY_CONFIG)
    export_onnx(deploy, str(tmp_path / 'tiny.onnx'), (64, 64))
    assert not deploy.detector.training
    assert not any(m.training for m in deploy.detector.modules())
