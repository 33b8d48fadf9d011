"""mmdet_pep/deploy/heads/pep.py (this file is not test_pep.py: that name
is the detector's tests). PEP exports to ONNX with its whole
post-processing and onnxruntime returns the eager model's instances (issue
#40's parity criteria), for the paper's purifying, the recommended
recipe's, the Baseline's Matrix NMS and the paper's N_all cap; an untrained
image gives no instance in both."""
import copy

import pytest

from deploy_testing import check_parity, eager, scenes, trained
from pep_testing import tiny_detector_cfg, tiny_head_cfg

LOSS_MASK = dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0)
# The paper's purifying, and the recommended recipe's (configs/pep/).
PAPER = dict(group_thr=0.5, mask_iou_thr=0.0, rescore=False, matrix_nms=False)
RECIPE = dict(group_thr=0.5, mask_iou_thr=0.5, rescore=True, matrix_nms=True)


@pytest.fixture(scope='module')
def model():
    test_cfg = tiny_head_cfg()['test_cfg']
    # Confident detections only: the blank background must give none.
    test_cfg['score_thr'] = 0.2
    return trained(
        tiny_detector_cfg(test_cfg=test_cfg, loss_mask=LOSS_MASK),
        steps=120)


def variant(model, purifier=True, excavator=True, **test_cfg):
    """``model`` with other test settings or without a mechanism (the
    same weights)."""
    model = copy.deepcopy(model)
    head = model.mask_head
    head.test_cfg = head._check_test_cfg({**head.test_cfg, **test_cfg})
    if not purifier:
        head.purifier = None
    if not excavator:
        head.excavator = None
    return model


def test_the_trained_model_predicts_instances_and_none_on_the_blank(model):
    images = scenes()
    assert len(eager(model, images['scene']).scores) >= 3
    assert len(eager(model, images['blank']).scores) == 0


@pytest.mark.parametrize(
    'settings', [
        dict(purify=PAPER),
        dict(purify=RECIPE),
        dict(purify=RECIPE, max_descriptors=8),
        dict(purify=PAPER, min_area='stride'),
    ],
    ids=['paper', 'recipe', 'max-descriptors', 'min-area-stride'])
def test_parity(model, tmp_path, settings):
    report = check_parity(variant(model, **settings), tmp_path)
    assert report['scene']['num'] >= 3, report
    assert report['blank']['num'] == 0, report


def test_parity_baseline_matrix_nms(model, tmp_path):
    """Without excavator and purifier (Tab. 2's Baseline): Matrix NMS."""
    report = check_parity(
        variant(model, purifier=False, excavator=False), tmp_path)
    assert report['scene']['num'] >= 3, report


def test_parity_of_a_graph_traced_on_an_empty_image(model, tmp_path):
    """Traced where the model finds nothing (the blank image), the graph
    still returns the scene's instances with their boxes."""
    report = check_parity(
        variant(model, purify=RECIPE), tmp_path, example='blank')
    assert report['scene']['num'] >= 3, report


def test_parity_dynamic_size(model, tmp_path):
    """One graph for 64 x 64 and 64 x 96 inputs."""
    report = check_parity(
        variant(model, purify=RECIPE), tmp_path, dynamic=True)
    assert report['non_square']['num'] >= 3, report


def test_grouping_iterations_equal_the_greedy_loop():
    """ops.greedy_groups (a fixed number of matrix iterations) gives
    PEPPurifier.group's groups whenever it converged, and says when it did
    not: on random links, and on a chain where each node links only the
    next (leaders 0, 2, 4, ...: the longest suppression chain)."""
    import torch

    from mmdet_pep.deploy.ops import greedy_groups, groups_converged
    from mmdet_pep.models.layers import PEPPurifier

    def loop(linked, n):
        """PEPPurifier.group's loop on sorted nodes (linked given)."""
        purifier = PEPPurifier(in_channels=2, embed_channels=2)
        purifier.forward = lambda desc, xy: torch.where(
            linked[:n, :n], 10., -10.)
        leaders, members = purifier.group(
            torch.zeros(n, 2), torch.zeros(n, 2), -torch.arange(n).float(),
            torch.zeros(n, dtype=torch.long), group_thr=0.5)
        owner = torch.full((n, ), -1)
        for lead, row in zip(leaders, members):
            owner[row] = lead
        return owner

    torch.manual_seed(0)
    for trial in range(20):
        k, n = 12, 9  # 9 valid of 12 sorted candidates
        linked = torch.rand(k, k) < 0.3
        linked = linked | linked.t()
        valid = torch.arange(k) < n
        assert groups_converged(linked, valid, 16)
        owner = greedy_groups(linked, valid, 16)
        assert owner[:n].tolist() == loop(linked, n).tolist()
        assert (owner[n:] == -1).all()
    chain = torch.zeros(8, 8, dtype=torch.bool)
    chain[torch.arange(7), torch.arange(1, 8)] = True
    chain = chain | chain.t()
    valid = torch.ones(8, dtype=torch.bool)
    assert not groups_converged(chain, valid, 3)
    assert groups_converged(chain, valid, 8)
    assert greedy_groups(chain, valid, 8).tolist() == loop(chain, 8).tolist()
