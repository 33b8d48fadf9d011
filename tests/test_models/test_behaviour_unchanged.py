"""Refactoring guard: PEP's losses and predictions, and those of its Tab. 2
ablations, are identical to the ones recorded from the code before the
refactor into finished-loss sub-modules (commit 617b54f).

``pep_rel_coords`` (PEP with ``rel_coords='quadratic'``, added for issue #39)
also pins which kept detections are mined (``.../mined``), and must keep
at least one in every prediction: its training losses include the mined
descriptors' masks with relative coordinates, its predictions mined nodes
whose masks use them.

Re-record only for an intended behaviour change, and say so in the commit:
``PEP_RECORD_REFERENCE=1 python -m pytest tests/test_models/
test_behaviour_unchanged.py``.
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmdet.models.layers import mask_matrix_nms
from mmdet.registry import MODELS
from pep_testing import fpn_feats, img_meta, make_gt, tiny_head_cfg

REFERENCE = osp.join(osp.dirname(osp.dirname(__file__)), 'data',
                     'pep_reference.pt')
RECORD = os.environ.get('PEP_RECORD_REFERENCE') == '1'

VARIANTS = {
    'pep': {},
    'baseline': dict(excavator=None, purifier=None),
    'excavate': dict(purifier=None),
    'purify': dict(excavator=None),
    'pep_rel_coords': dict(rel_coords='quadratic'),
}
# Variants whose record says which kept detections are mined.
MINED_RECORDED = ('pep_rel_coords', )


def crowd():
    # Touching and overlapping same-class objects of several sizes, one
    # isolated object of another class, and a second image without objects.
    boxes = [[8, 8, 24, 24], [24, 8, 40, 24], [8, 24, 24, 40],
             [20, 20, 36, 36], [40, 40, 62, 62], [2, 44, 14, 56]]
    return [make_gt(boxes, [0, 0, 0, 0, 1, 2], shape_kind='disc'),
            make_gt([], [])]


def kept_mined(head, trace):
    """Whether each kept detection of one image is a mined node (a group
    led by one with the purifier), from the stages' trace: the purified
    groups' leaders are found by rerunning ``_purify`` with node indices as
    labels (labels are only passed through there), Matrix NMS's kept nodes
    by rerunning mmdet's ``mask_matrix_nms`` on the same inputs."""
    cfg = head.test_cfg
    if 'node_masks' not in trace:
        return torch.zeros(0, dtype=torch.bool)
    nodes = trace['node_masks']
    mined = nodes['mined']
    if 'group' in trace:
        group = trace['group']
        leaders = head._purify(
            dict(group, labels=torch.arange(len(mined))), cfg)['labels']
        assert torch.equal(group['labels'][leaders],
                           trace['purify']['labels'])
        nodes, mined = trace['purify'], mined[leaders]
    if 'matrix_nms' in trace:
        scores, *_, keep = mask_matrix_nms(
            nodes['masks'],
            nodes['labels'],
            nodes['scores'],
            mask_area=nodes['areas'],
            nms_pre=cfg.nms_pre,
            max_num=cfg.max_per_img,
            kernel=cfg.kernel,
            sigma=cfg.sigma,
            filter_thr=cfg.filter_thr)
        assert torch.equal(scores, trace['matrix_nms']['scores'])
        mined = mined[keep]
    return mined


def run_variant(variant):
    overrides = VARIANTS[variant]
    torch.manual_seed(0)
    head = MODELS.build(tiny_head_cfg(**overrides))
    head.init_weights()
    outs = head(fpn_feats(2))
    losses = head.loss_by_feat(
        *outs, batch_gt_instances=crowd(),
        batch_img_metas=[img_meta(), img_meta()])
    record = {f'loss/{k}': v.detach() for k, v in losses.items()}
    # Sharpen the untrained head so that many candidates pass score_thr and
    # the purifier, the excavator and Matrix NMS all see work.
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([2., 1., 0., 0.]))
        if variant in MINED_RECORDED:
            # Sharpen the untrained excavator too, so that mined nodes pass
            # score_thr = 0.2 (key-pixel class x peak confidence, about
            # 0.25 x 0.5 untrained) and some are kept at seed 0 in every
            # prediction below: key pixels of class 1 (the isolated disc's
            # class, so at group_thr 0.5 the mined nodes lead their own
            # group) and peaks of E near sigmoid(1) = 0.73.
            head.excavator.key_cls.bias.copy_(torch.tensor([0., 3., 0., 0.]))
            head.excavator.param_generator.bias[-1] = 1.
        # sigmoid(5) = 0.993 is the untrained purifier's link probability of
        # near-identical descriptors: 0.995 keeps groups apart.
        for purify in (dict(group_thr=0.5), dict(group_thr=0.995),
                       dict(group_thr=0.995, matrix_nms=True)):
            head.test_cfg = head._check_test_cfg({
                **head.test_cfg, 'score_thr': 0.2,
                'purify': purify,
                'excavate': dict(max_originals=10, key_thr=0.0, max_keys=2)
            })
            results, traces = head.predict_by_feat(
                *head(fpn_feats(2)),
                batch_img_metas=[img_meta(), img_meta()],
                return_trace=True)
            for i, res in enumerate(results):
                key = f'pred/{purify}/{i}'
                for field in ('scores', 'labels', 'bboxes'):
                    record[f'{key}/{field}'] = res.get(field)
                # Bit-packed: the reference file stays small.
                record[f'{key}/masks'] = torch.from_numpy(
                    np.packbits(res.masks.numpy(), axis=-1))
                if variant in MINED_RECORDED:
                    mined = kept_mined(head, traces[i])
                    assert len(mined) == len(res)
                    record[f'{key}/mined'] = mined
    return record


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_losses_and_predictions_unchanged(variant):
    record = run_variant(variant)
    if RECORD:
        saved = torch.load(REFERENCE) if osp.exists(REFERENCE) else {}
        saved[variant] = record
        os.makedirs(osp.dirname(REFERENCE), exist_ok=True)
        torch.save(saved, REFERENCE)
    reference = torch.load(REFERENCE, weights_only=True)[variant]
    assert set(record) == set(reference)
    # The predictions must have content, or this guard would prove nothing.
    assert any(v.numel() for k, v in record.items() if k.endswith('masks'))
    if variant in MINED_RECORDED:
        # Every prediction (3 test configs x 2 images) keeps a mined
        # detection, so a change to the mined nodes' masks shows.
        mined = {k: v for k, v in record.items() if k.endswith('/mined')}
        assert len(mined) == 6
        assert all(v.any() for v in mined.values()), mined
    for key, expected in reference.items():
        torch.testing.assert_close(
            record[key], expected, rtol=1e-5, atol=1e-6, msg=key)
