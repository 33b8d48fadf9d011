"""EmbedMask and SipMask export to ONNX with their whole post-processing
(FCOS candidates, class-wise NMS or SipMask's YOLACT fast NMS, masks of the
survivors) and onnxruntime returns the eager model's instances (issue #40's
parity criteria), with a fixed-size and a dynamic-size graph; the blank
image gives no instance in both. The real synthetic configs export too."""
import copy
import os.path as osp

import numpy as np
import pytest

from deploy_testing import check_parity, eager, run_config, scenes, trained
from pep_testing import ROOT, tiny_embedmask_cfg, tiny_sipmask_cfg

# Per model: the tiny config, the Adam steps that fit it to the scene and
# the real synthetic config.
MODELS = {
    'EmbedMask': (tiny_embedmask_cfg, 200,
                  'configs/embedmask/embedmask_r18_fpn_1200it_synthetic.py'),
    'SipMask': (tiny_sipmask_cfg, 250,
                'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py'),
}
# Confident detections only: the blank background must give none (its best
# class score is ~0.5 after the steps, the scene's objects' > 0.85).
SCORE_THR = 0.65


@pytest.fixture(scope='module', params=sorted(MODELS))
def model(request):
    make_cfg, steps, _ = MODELS[request.param]
    cfg = make_cfg()
    cfg['test_cfg']['score_thr'] = SCORE_THR
    return trained(cfg, steps=steps)


def with_test_cfg(model, **test_cfg):
    """``model`` with other test settings (same weights)."""
    model = copy.deepcopy(model)
    head = model.bbox_head
    head.test_cfg = head.complete_test_cfg({**head.test_cfg, **test_cfg})
    return model


def with_fast_nms(model):
    """``model`` with the real-time configs' fast NMS (SipMask's)."""
    return with_test_cfg(
        model, nms=dict(type='fast_nms', iou_threshold=0.5, top_k=200))


def variants(model):
    """``model``, and SipMask with fast NMS too."""
    if type(model).__name__ == 'SipMask':
        return [model, with_fast_nms(model)]
    return [model]


def test_the_trained_model_predicts_instances_and_none_on_the_blank(model):
    images = scenes()
    for variant in variants(model):
        assert len(eager(variant, images['scene']).scores) >= 1
        assert len(eager(variant, images['blank']).scores) == 0


def test_parity(model, tmp_path):
    for variant in variants(model):
        report = check_parity(variant, tmp_path)
        assert report['scene']['num'] >= 1, report
        assert report['blank']['num'] == 0, report


def test_parity_many_candidates(model, tmp_path):
    """The tiny config's score_thr (0.05): many overlapping candidates go
    through NMS and the blank image has instances too."""
    report = check_parity(with_test_cfg(model, score_thr=0.05), tmp_path)
    assert report['flipped']['num'] > report['scene']['num'], report
    assert report['blank']['num'] >= 1, report


@pytest.mark.parametrize('rank', ['cls', 'cls_ctr', 'cls_ctr_location'])
def test_parity_of_every_candidate_ranking(model, rank, tmp_path):
    """Each FCOS code's candidate rule (``nms_pre_rank``), with a cut of 5
    per level that the many candidates of score_thr 0.05 exceed."""
    report = check_parity(
        with_test_cfg(model, nms_pre_rank=rank, nms_pre=5, score_thr=0.05),
        tmp_path)
    assert report['scene']['num'] >= 1, report


def test_parity_dynamic_size(model, tmp_path):
    """One graph for 64 x 64 and 64 x 96 inputs."""
    report = check_parity(model, tmp_path, dynamic=True)
    assert report['scene']['num'] >= 1, report
    assert report['non_square']['num'] >= 1, report


def test_parity_of_a_graph_traced_on_an_empty_image(model, tmp_path):
    """Traced where nothing survives NMS (only the invalid copy gets a
    mask), the graph still finds the scene's instances."""
    report = check_parity(model, tmp_path, example='blank')
    assert report['scene']['num'] >= 1, report


@pytest.mark.parametrize('name', sorted(MODELS))
def test_synthetic_config_exports_and_runs(name, tmp_path):
    """The real config, random weights: a 128 x 128 graph that
    onnxruntime runs."""
    image = np.random.RandomState(0).randint(0, 255, (128, 128, 3), np.uint8)
    _, outs = run_config(osp.join(ROOT, MODELS[name][2]), tmp_path, image)
    num = len(outs['scores'])
    assert num <= 50
    assert outs['boxes'].shape == (num, 4)
    assert outs['labels'].shape == (num, )
    assert outs['masks'].shape == (num, 128, 128)
