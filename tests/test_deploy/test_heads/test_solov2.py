"""mmdet's SOLOv2 exports to ONNX with its whole post-processing (Matrix
NMS included) and onnxruntime returns the eager model's instances (issue
#40's parity criteria), with a fixed-size and a dynamic-size graph; the
blank image gives no instance in both. The boxes are those of the masks:
mmdet writes zero boxes for SOLOv2."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import ConfigDict

from deploy_testing import check_parity, eager, run_config, scenes, trained
from pep_testing import ROOT, _tiny_preprocessor_and_backbone, tiny_fpn

CONFIG = osp.join(ROOT, 'configs/solov2/solov2_r18_fpn_1200it_synthetic.py')


def tiny_solov2_cfg():
    """configs/solov2/solov2_r18_fpn_1200it_synthetic.py's model, shrunk:
    narrow ResNet-18, 16-channel FPN and head, smaller grids (a ConfigDict:
    the head reads test_cfg by attribute)."""
    return ConfigDict(
        type='SOLOv2',
        **_tiny_preprocessor_and_backbone(),
        neck=tiny_fpn(),
        mask_head=dict(
            type='SOLOV2Head',
            num_classes=3,
            in_channels=16,
            feat_channels=16,
            stacked_convs=2,
            strides=[8, 8, 16, 32, 32],
            scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
            pos_scale=0.2,
            num_grids=[12, 10, 8, 6, 4],
            cls_down_index=0,
            mask_feature_head=dict(
                feat_channels=16,
                start_level=0,
                end_level=3,
                out_channels=16,
                mask_stride=4,
                norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            loss_mask=dict(type='DiceLoss', use_sigmoid=True,
                           loss_weight=3.0),
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0)),
        test_cfg=dict(
            nms_pre=500,
            score_thr=0.1,
            mask_thr=0.5,
            filter_thr=0.05,
            kernel='gaussian',
            sigma=2.0,
            max_per_img=20))


@pytest.fixture(scope='module')
def model():
    return trained(tiny_solov2_cfg(), steps=200)


def test_the_trained_model_predicts_instances_and_none_on_the_blank(model):
    images = scenes()
    assert len(eager(model, images['scene']).scores) >= 1
    assert len(eager(model, images['blank']).scores) == 0


def test_parity(model, tmp_path):
    report = check_parity(model, tmp_path, boxes_from_masks=True)
    assert report['scene']['num'] >= 1, report
    assert report['blank']['num'] == 0, report


def test_parity_of_a_graph_traced_on_an_empty_image(model, tmp_path):
    """Traced where no cell passes score_thr (only the invalid copy gets a
    mask), the graph still finds the scene's instances."""
    report = check_parity(
        model, tmp_path, boxes_from_masks=True, example='blank')
    assert report['scene']['num'] >= 1, report


def test_parity_dynamic_size(model, tmp_path):
    """One graph for 64 x 64 and 64 x 96 inputs."""
    report = check_parity(
        model, tmp_path, dynamic=True, boxes_from_masks=True)
    assert report['scene']['num'] >= 1, report
    assert report['non_square']['num'] >= 1, report


def test_parity_with_fewer_cells_than_the_grids(model, tmp_path,
                                                monkeypatch):
    """The capped branch (grids with more cells than MAX_CELLS, as mmdet's
    COCO SOLOv2): the best cells are enough while no more of them pass
    score_thr."""
    import torch

    from mmdet_pep.deploy.heads import solov2
    from mmdet_pep.deploy.model import DeployModel

    cap = 64
    assert sum(g**2 for g in model.mask_head.num_grids) > cap
    deploy = DeployModel(model, solov2.solov2_postprocess)
    for image in scenes().values():
        inputs = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            feats = model.extract_feat(deploy.preprocess(inputs))
            assert solov2.num_candidate_cells(model, feats) <= cap
    monkeypatch.setattr(solov2, 'MAX_CELLS', cap)
    report = check_parity(model, tmp_path, boxes_from_masks=True)
    assert report['scene']['num'] >= 1, report


def test_the_synthetic_config_exports_and_runs(tmp_path):
    """The zoo's config (random weights) gives a graph onnxruntime runs."""
    image = scenes()['scene'].repeat(2, 0).repeat(2, 1)
    _, outs = run_config(CONFIG, tmp_path, image)
    assert set(outs) >= {'boxes', 'scores', 'labels', 'masks'}
    assert outs['masks'].shape[1:] == (128, 128)
    assert np.all(np.isfinite(outs['scores']))
