import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmdet_pep.models import PEPHead
from pep_testing import ROOT, fpn_feats, img_meta, make_gt, tiny_head_cfg

LOSS_KEYS = ('loss_perceive', 'loss_mask', 'loss_excavate',
             'loss_excavate_cls', 'loss_graph')


def build_head(**overrides):
    torch.manual_seed(0)
    head = MODELS.build(tiny_head_cfg(**overrides))
    head.init_weights()
    return head


def head_losses(head, gts, shape=(64, 64)):
    outs = head(fpn_feats(len(gts), shape))
    return head.loss_by_feat(
        *outs,
        batch_gt_instances=gts,
        batch_img_metas=[img_meta(shape) for _ in gts])


def crowd_gt():
    # Four touching same-class squares plus one isolated disc.
    boxes = [[8, 8, 24, 24], [24, 8, 40, 24], [8, 24, 24, 40],
             [24, 24, 40, 40], [44, 44, 60, 60]]
    return make_gt(boxes, [0, 0, 0, 0, 1])


def test_empty_gt_losses_are_zero_but_connected():
    head = build_head()
    losses = head_losses(head, [make_gt([], [])])
    assert set(losses) == set(LOSS_KEYS)
    assert losses['loss_perceive'].item() > 0
    for key in LOSS_KEYS[1:]:
        assert losses[key].item() == 0, key
    sum(losses.values()).backward()
    # The zero terms keep every parameter in the graph (DDP-safe).
    for name, p in head.named_parameters():
        assert p.grad is not None, name


def test_one_gt_losses():
    head = build_head()
    losses = head_losses(head, [make_gt([[10, 12, 40, 44]], [2])])
    assert losses['loss_perceive'].item() > 0
    assert losses['loss_mask'].item() > 0
    assert all(torch.isfinite(v) for v in losses.values())


def test_crowd_gives_excavating_targets_and_all_losses_positive():
    head = build_head()
    gt = crowd_gt()
    targets = head._get_targets_single(gt, img_meta(), (16, 16))
    labels, pos_gt_inds, center_cells, gt_masks, gt_boxes, centers = targets
    assert (center_cells >= 0).any(1).all(), 'every GT has an original'
    ori_gt = torch.arange(5)
    heat, near = head.excavator.get_targets(gt_boxes, centers, ori_gt,
                                            (8, 8), (64, 64))
    assert near[0, 1] and near[0, 2] and near[0, 3]
    assert not near[0, 0] and not near[0, 4] and not near[4].any()
    assert heat[:4].sum() > 0 and heat[4].sum() == 0

    losses = head_losses(head, [gt])
    for key in LOSS_KEYS:
        assert losses[key].item() > 0, key


def test_backward_reaches_excavator_and_purifier():
    head = build_head()
    losses = head_losses(head, [crowd_gt()])
    sum(losses.values()).backward()
    for module in (head.excavator, head.purifier):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_half_empty_batch():
    head = build_head()
    losses = head_losses(head, [crowd_gt(), make_gt([], [])])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_mask'].item() > 0


def test_smaller_instance_wins_shared_cells():
    head = build_head(scale_ranges=((1, 512), ) * 5)
    gt = make_gt([[0, 0, 64, 64], [28, 28, 36, 36]], [0, 1])
    labels, pos_gt_inds = head._get_targets_single(gt, img_meta(),
                                                   (16, 16))[:2]
    # Level 0 (12x12): the small one's centre cell belongs to it.
    centre = 6 * 12 + 6
    assert pos_gt_inds[centre] == 1 and labels[centre] == 1


def test_degenerate_masks_are_ignored():
    head = build_head()
    gt = make_gt([[10, 10, 10, 30], [20, 20, 40, 40]], [0, 1])
    targets = head._get_targets_single(gt, img_meta(), (16, 16))
    pos_gt_inds, center_cells = targets[1], targets[2]
    assert not (pos_gt_inds == 0).any() and (center_cells[0] < 0).all()
    assert (pos_gt_inds == 1).any()


def predict(head, feats, shape=(64, 64), **cfg):
    if cfg:
        head.test_cfg = head._check_test_cfg({**head.test_cfg, **cfg})
    with torch.no_grad():
        return head.predict_by_feat(
            *head(feats), batch_img_metas=[img_meta(shape)], rescale=True)


def check_result_types(res, shape):
    assert res.masks.dtype == torch.bool
    assert res.masks.shape[1:] == shape
    assert res.labels.dtype == torch.long
    assert res.scores.shape == res.labels.shape == (len(res), )
    assert res.bboxes.shape == (len(res), 4)


def test_predict_nothing_above_threshold_is_empty():
    head = build_head()
    res = predict(head, fpn_feats(), score_thr=1.0)[0]
    assert len(res) == 0
    check_result_types(res, (64, 64))


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_features_give_no_detections(value):
    head = build_head()
    res = predict(head, fpn_feats(fill=value))[0]
    assert len(res) == 0
    check_result_types(res, (64, 64))


@pytest.mark.parametrize('excavator,purifier', [(True, True), (False, True),
                                                (True, False),
                                                (False, False)])
def test_predict_types_and_mask_boxes(excavator, purifier):
    overrides = {}
    if not excavator:
        overrides['excavator'] = None
    if not purifier:
        overrides['purifier'] = None
    head = build_head(**overrides)
    # Sharpen the untrained head so that it predicts something.
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
    res = predict(head, fpn_feats(), score_thr=0.3, mask_thr=0.5)[0]
    check_result_types(res, (64, 64))
    assert len(res) > 0
    for mask, box in zip(res.masks, res.bboxes):
        ys, xs = mask.nonzero(as_tuple=True)
        assert box.tolist() == [
            xs.min().item(),
            ys.min().item(),
            xs.max().item() + 1,
            ys.max().item() + 1
        ]


def test_rescale_false_returns_img_shape():
    head = build_head()
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
    meta = dict(img_meta(), ori_shape=(128, 128))
    with torch.no_grad():
        res_small = head.predict_by_feat(
            *head(fpn_feats()), batch_img_metas=[meta], rescale=False)[0]
        res_big = head.predict_by_feat(
            *head(fpn_feats()), batch_img_metas=[meta], rescale=True)[0]
    assert res_small.masks.shape[1:] == (64, 64)
    assert res_big.masks.shape[1:] == (128, 128)


@pytest.mark.parametrize('field,value', [
    ('score_thr', -0.1),
    ('mask_thr', 1.5),
    ('nms_pre', 0),
    ('excavate', dict(key_thr=-1)),
    ('excavate', dict(max_keys=0)),
    ('purify', dict(group_thr=2.0)),
    ('min_area', -1),
    ('min_area', 'auto'),
    ('min_area', True),
    ('max_descriptors', 0),
    ('max_descriptors', 30.0),
])
def test_invalid_test_cfg_is_rejected(field, value):
    cfg = tiny_head_cfg()
    cfg['test_cfg'][field] = value
    with pytest.raises(ValueError, match=field):
        MODELS.build(cfg)


def test_min_area_is_solov2s_stride_filter_or_a_fixed_minimum():
    # Two nodes of the finest level (stride 8) on a 16 x 16 mask map: a
    # 2 x 3 px mask (6 pixels, an object of ~10 x 10 px at stride 4) and a
    # 3 x 4 px one (12 pixels). SOLOv2's filter keeps more than 8 pixels.
    head = build_head()
    logits = torch.full((2, 16, 16), -6.)
    logits[0, 2:4, 2:5] = 6.
    logits[1, 8:11, 8:12] = 6.
    head._dynamic_masks = lambda desc, xy, scale, feats: logits

    def kept_areas(**test_cfg):
        nodes = dict(desc=torch.zeros(2, head.desc_channels),
                     xy=torch.zeros(2, 2), scale=torch.ones(2),
                     stride=torch.full((2, ), 8.),
                     scores=torch.tensor([0.9, 0.8]),
                     labels=torch.zeros(2, dtype=torch.long),
                     mined=torch.tensor([False, True]))
        cfg = head._check_test_cfg({**head.test_cfg, **test_cfg})
        out = head._node_masks(nodes, None, cfg)
        return out['areas'].tolist()

    assert head.test_cfg.min_area == 'stride'
    assert kept_areas() == [12.]
    assert kept_areas(min_area=0) == [6., 12.]
    assert kept_areas(min_area=5) == [6., 12.]
    assert kept_areas(min_area=6) == [12.]


def test_max_descriptors_keeps_the_best_scoring_nodes_in_order():
    # Five nodes, originals then mined, hand-built: the cap of 3 keeps the
    # three best scores (nodes 0, 2 and 3) in their order, every field
    # with them; a cap they fit under changes nothing.
    scores = torch.tensor([0.9, 0.2, 0.7, 0.8, 0.3])
    nodes = dict(scores=scores,
                 labels=torch.tensor([0, 1, 2, 0, 1]),
                 desc=torch.arange(5.)[:, None].expand(5, 4),
                 xy=torch.arange(10.).view(5, 2),
                 stride=torch.full((5, ), 8.),
                 scale=torch.ones(5),
                 mined=torch.tensor([False, False, False, True, True]))
    capped = PEPHead._cap_descriptors(nodes, 3)
    assert capped['scores'].tolist() == pytest.approx([0.9, 0.7, 0.8])
    assert capped['labels'].tolist() == [0, 2, 0]
    assert capped['desc'][:, 0].tolist() == [0., 2., 3.]
    assert capped['xy'].tolist() == [[0., 1.], [4., 5.], [6., 7.]]
    assert capped['mined'].tolist() == [False, False, True]
    assert set(capped) == set(nodes)
    assert PEPHead._cap_descriptors(nodes, 5) is nodes


def test_max_descriptors_caps_what_reaches_mask_learning_and_the_purifier():
    head = build_head()
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
        outs = head(fpn_feats())
        kwargs = dict(batch_img_metas=[img_meta()], return_trace=True)
        head.test_cfg = head._check_test_cfg(
            {**head.test_cfg, 'score_thr': 0.02,
             'excavate': dict(max_originals=10, key_thr=0., max_keys=2)})
        _, (free, ) = head.predict_by_feat(*outs, **kwargs)
        assert 'cap_descriptors' not in free
        num = len(free['add_mined']['scores'])
        assert num > 6 and free['add_mined']['mined'].any()
        head.test_cfg = head._check_test_cfg(
            {**head.test_cfg, 'max_descriptors': 6})
        (capped, ), (trace, ) = head.predict_by_feat(*outs, **kwargs)
    kept = trace['cap_descriptors']
    assert len(kept['scores']) == 6
    torch.testing.assert_close(
        kept['scores'].sort(descending=True).values,
        free['add_mined']['scores'].topk(6).values)
    assert len(trace['node_masks']['scores']) <= 6
    assert trace['group']['members'].shape[1] <= 6
    assert 0 < len(capped) <= 6 < len(free['node_masks']['scores'])
    check_result_types(capped, (64, 64))


def test_predict_by_feat_returns_the_trace_of_each_stage():
    head = build_head()
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
        outs = head(fpn_feats(2))
        metas = [img_meta(), img_meta()]
        results, traces = head.predict_by_feat(
            *outs, batch_img_metas=metas, return_trace=True)
        plain = head.predict_by_feat(*outs, batch_img_metas=metas)
    assert isinstance(plain, list) and len(traces) == 2
    for res, ref, trace in zip(results, plain, traces):
        assert torch.equal(res.masks, ref.masks)
        assert torch.equal(res.scores, ref.scores)
        assert list(trace) == [
            'select_originals', 'mine', 'add_mined', 'node_masks', 'group',
            'purify', 'resize_masks', 'masks_to_boxes'
        ]
        ori, nodes = trace['select_originals'], trace['add_mined']
        assert not ori['mined'].any()
        # Originals first, then the mined descriptors that pass score_thr.
        num_ori = len(ori['scores'])
        assert not nodes['mined'][:num_ori].any()
        assert nodes['mined'][num_ori:].all()
        assert len(trace['mine']['xy']) >= int(nodes['mined'].sum())
        # Every node is in exactly one group, led by its best member.
        members = trace['group']['members']
        assert (members.sum(0) == 1).all()
        assert torch.equal(res.masks, trace['resize_masks'])
        assert torch.equal(res.bboxes, trace['masks_to_boxes'])


def test_mismatched_level_config_is_rejected():
    with pytest.raises(ValueError, match='num_grids'):
        MODELS.build(tiny_head_cfg(num_grids=[12, 10]))


def test_unknown_head_key_names_the_key():
    with pytest.raises(TypeError, match='excavtor'):
        MODELS.build(tiny_head_cfg(excavtor=None))


def test_matrix_nms_after_purifying_only_drops_or_decays():
    head = build_head()
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
    plain = predict(head, fpn_feats(), score_thr=0.3)[0]
    head.test_cfg = head._check_test_cfg(
        {**head.test_cfg, 'purify': dict(group_thr=0.5, matrix_nms=True)})
    decayed = predict(head, fpn_feats(), score_thr=0.3)[0]
    check_result_types(decayed, (64, 64))
    assert 0 < len(decayed) <= len(plain)
    assert decayed.scores.max() <= plain.scores.max() + 1e-6


def test_rel_coords_are_one_dynamic_conv_over_b_and_the_offsets():
    channels = 5
    head = build_head(rel_coords='quadratic')
    dim = head.mask_feature_head.out_channels
    assert head.desc_channels == dim + channels
    assert head.conv_desc.out_channels == dim + channels
    assert head.excavator.desc_channels == dim + channels
    # By hand: the channels [B, R_n] materialised, R_n the pixel offsets
    # from the node (pixel centres at stride 4) in units of its scale.
    torch.manual_seed(1)
    desc = torch.randn(3, dim + channels)
    xy = torch.tensor([[-0.5, 0.25], [0.0, 0.0], [0.9, -0.8]])
    scale = torch.tensor([12., 24., 48.])
    feats = torch.randn(dim, 6, 8)
    px = (torch.arange(8) + 0.5) * 4  # pixel centres, 32 px wide
    py = (torch.arange(6) + 0.5) * 4  # 24 px high
    node_x, node_y = (xy[:, 0] + 1) / 2 * 32, (xy[:, 1] + 1) / 2 * 24
    rx = ((px[None] - node_x[:, None]) / scale[:, None])[:, None, :]
    ry = ((py[None] - node_y[:, None]) / scale[:, None])[:, :, None]
    rx, ry = rx.expand(3, 6, 8), ry.expand(3, 6, 8)
    coords = [rx, ry, rx**2, ry**2, rx * ry]
    inputs = torch.cat([feats[None].expand(3, -1, -1, -1),
                        torch.stack(coords, 1)], 1)
    want = (desc[:, :, None, None] * inputs).sum(1)
    torch.testing.assert_close(
        head._dynamic_masks(desc, xy, scale, feats), want)


def test_rel_coords_quadratic_kernel_peaks_at_its_own_node():
    # B all zero, weights -(rx^2 + ry^2): the mask is a bump centred on the
    # node, wherever the node is (a sign or axis error moves the peak).
    head = build_head(rel_coords='quadratic')
    dim = head.mask_feature_head.out_channels
    desc = torch.zeros(2, dim + 5)
    desc[:, dim + 2:dim + 4] = -1
    # The centres of stride-4 pixels (col 1, row 6) and (col 6, row 3).
    xy = torch.tensor([[-0.625, 0.625], [0.625, -0.125]])
    logits = head._dynamic_masks(desc, xy, torch.tensor([8., 8.]),
                                 torch.randn(dim, 8, 8) * 0)
    peaks = [divmod(int(m.argmax()), 8) for m in logits]
    assert peaks == [(6, 1), (3, 6)]  # (row, col) of stride-4 pixels


def train_then_predict(head):
    """One backward pass of every loss on a crowd and an empty image (each
    loss finite and positive), then a prediction with a class forced on
    that must find something; the head keeps its gradients."""
    losses = head_losses(head, [crowd_gt(), make_gt([], [])])
    for key in LOSS_KEYS:
        assert torch.isfinite(losses[key]) and losses[key].item() > 0, key
    sum(losses.values()).backward()
    head.eval()
    with torch.no_grad():
        head.conv_cls.bias.copy_(torch.tensor([3., 0., 0., 0.]))
        results = predict(head, fpn_feats(), score_thr=0.3)
    check_result_types(results[0], (64, 64))
    assert len(results[0]) > 0
    return head


def test_rel_coords_train_and_predict_end_to_end():
    head = train_then_predict(build_head(rel_coords='quadratic'))
    # The coordinate weights of the descriptors learn from the mask loss.
    dim = head.mask_feature_head.out_channels
    assert head.conv_desc.weight.grad[dim:].abs().sum() > 0


def reaches_the_base_network(head):
    """Whether the last backward pass left a gradient on a parameter of the
    base network (anything but the excavator and the purifier)."""
    return any(
        p.grad is not None and p.grad.abs().sum() > 0
        for name, p in head.named_parameters()
        if not name.startswith(('excavator.', 'purifier.')))


@pytest.mark.parametrize('detach', [False, True])
def test_detach_excavation_keeps_mining_out_of_the_base_network(detach):
    """The mining losses (L_E, L_PE and, detached, the mined masks' own
    loss) reach the base network (B, towers) end to end, and only the
    excavator with ``detach_excavation``."""
    head = build_head(rel_coords='quadratic', detach_excavation=detach)
    losses = head_losses(head, [crowd_gt()])
    mining = ['loss_excavate', 'loss_excavate_cls']
    if detach:
        assert losses['loss_mask_mined'].item() > 0
        mining.append('loss_mask_mined')
    else:
        assert 'loss_mask_mined' not in losses
    sum(losses[key] for key in mining).backward()
    assert reaches_the_base_network(head) != detach
    mine_grad = head.excavator.mine_fcs[0].weight.grad
    assert mine_grad is not None and mine_grad.abs().sum() > 0


def test_detach_excavation_leaves_the_baseline_mask_loss():
    """Detached, L_M is the Baseline's (originals only) on the same head
    outputs; end to end the mined masks share its mean."""
    head = build_head(detach_excavation=True)
    gts = [crowd_gt(), make_gt([], [])]
    metas = [img_meta() for _ in gts]
    outs = head(fpn_feats(len(gts)))
    detached = head.loss_by_feat(
        *outs, batch_gt_instances=gts, batch_img_metas=metas)
    excavator, head.excavator = head.excavator, None
    baseline = head.loss_by_feat(
        *outs[:3], None, batch_gt_instances=gts, batch_img_metas=metas)
    assert 'loss_mask_mined' not in baseline
    for key in ('loss_perceive', 'loss_mask'):
        assert torch.allclose(detached[key], baseline[key]), key
    head.excavator, head.detach_excavation = excavator, False
    joint = head.loss_by_feat(
        *outs, batch_gt_instances=gts, batch_img_metas=metas)
    assert not torch.allclose(joint['loss_mask'], baseline['loss_mask'])


def test_detach_excavation_trains_and_predicts_end_to_end():
    head = train_then_predict(build_head(detach_excavation=True))
    assert head.mask_feature_head.conv_pred.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('detach', [False, True])
def test_detach_purifier_keeps_the_graph_loss_out_of_the_base_network(
        detach):
    """L_M of Eq. 5 reaches the descriptor tower end to end, and only the
    purifier's projection with ``detach_purifier``; its value is the
    same."""
    losses = {}
    for flag in (False, detach):
        torch.manual_seed(0)
        head = build_head(detach_excavation=True, detach_purifier=flag)
        torch.manual_seed(1)
        losses[flag] = head_losses(head, [crowd_gt()])['loss_graph']
    assert losses[detach].item() > 0
    assert torch.allclose(losses[detach], losses[False])
    losses[detach].backward()
    assert reaches_the_base_network(head) != detach
    proj_grad = head.purifier.project[0].weight.grad
    assert proj_grad is not None and proj_grad.abs().sum() > 0


def test_a_seed_gives_pep_the_baselines_initial_base_network():
    """The mechanisms are initialised after the base network, so every
    parameter PEP shares with its Baseline starts equal at one seed (and
    the detached ablations differ by the mechanisms alone)."""
    baseline = dict(build_head(excavator=None, purifier=None)
                    .named_parameters())
    pep = build_head(detach_excavation=True, detach_purifier=True)
    shared = [(name, p) for name, p in pep.named_parameters()
              if name in baseline]
    assert len(shared) == len(baseline)
    for name, param in shared:
        assert torch.equal(param, baseline[name]), name


def test_detach_purifier_trains_and_predicts_end_to_end():
    head = train_then_predict(
        build_head(detach_excavation=True, detach_purifier=True))
    assert head.mask_feature_head.conv_pred.conv.weight.grad.abs().sum() > 0
    assert head.purifier.project[0].weight.grad.abs().sum() > 0


def test_unknown_rel_coords_is_rejected():
    for value in ('cubic', 'linear'):
        with pytest.raises(ValueError, match='rel_coords'):
            build_head(rel_coords=value)


def test_a_sigmoid_perceiving_loss_is_rejected():
    with pytest.raises(ValueError, match='loss_perceive'):
        build_head(loss_perceive=dict(type='FocalLoss', use_sigmoid=True))


def constructed_nodes(head, confidences=(0.9, 0.8, 0.6)):
    """Three nodes on an 8 x 8 mask map: A (left square), B (the touching
    right square, mask IoU 0 with A) and C (a shifted duplicate of A, IoU
    0.6 with A); category confidences 0.9, 0.8, 0.6 by default. A fourth
    confidence adds D: a false positive, a 2 x 2 blob in the top row of
    the background (mask IoU 0 with A, B and C)."""
    n = len(confidences)
    logits = torch.full((n, 8, 8), -6.)
    logits[0, 2:6, 0:4] = 6.
    logits[1, 2:6, 4:8] = 6.
    logits[2, 2:6, 1:4] = 4.
    logits[2, 2:4, 0] = 4.
    if n == 4:
        logits[3, 0:2, 0:2] = 6.
    nodes = dict(
        desc=torch.zeros(n, head.desc_channels),
        xy=torch.zeros(n, 2),
        scale=torch.ones(n),
        stride=torch.zeros(n),
        scores=torch.tensor(confidences),
        labels=torch.zeros(n, dtype=torch.long),
        mined=torch.zeros(n, dtype=torch.bool))
    head._dynamic_masks = lambda desc, xy, scale, feats: logits
    return head._node_masks(nodes, None, head.test_cfg)


def purify_with(head, link_logit, confidences=(0.9, 0.8, 0.6),
                test_cfg=None, **purify):
    n = len(confidences)
    head.purifier.forward = lambda desc, xy: torch.full((n, n),
                                                        link_logit)
    cfg = head._check_test_cfg({**head.test_cfg, **(test_cfg or {}),
                                'purify': {**head.test_cfg.purify,
                                           **purify}})
    nodes = constructed_nodes(head, confidences)
    out = head._purify(head._group(nodes, cfg), cfg)
    if cfg.purify.matrix_nms:
        out = head._matrix_nms(out, cfg)
    return nodes, out


def test_purify_by_the_graph_alone_merges_touching_instances():
    # The paper's grouping: a graph that links everything merges the two
    # touching squares (and the duplicate) into one instance, and the
    # score-weighted mean of the logits outvotes B: B is lost.
    head = build_head()
    nodes, out = purify_with(head, 9.)
    assert len(out['scores']) == 1
    assert out['masks'][0, 2:6, 1:4].all() and not out['masks'][0, :, 4:].any()
    # Score: the leader's, computed before the merge.
    torch.testing.assert_close(out['scores'], nodes['scores'][:1])


def test_mask_iou_gate_keeps_touching_instances_apart():
    head = build_head()
    nodes, out = purify_with(head, 9., mask_iou_thr=0.5)
    assert len(out['scores']) == 2  # A with its duplicate C; B alone
    assert out['masks'][0, 2:6, 0:4].all() and not out['masks'][0, :, 4:].any()
    assert torch.equal(out['masks'][1], nodes['masks'][1])
    assert nodes['masks'][0].logical_and(nodes['masks'][2]).sum() / \
        nodes['masks'][0].logical_or(nodes['masks'][2]).sum() > 0.5


def test_rescore_uses_the_merged_mask():
    head = build_head()
    nodes, out = purify_with(head, 9., mask_iou_thr=0.5, rescore=True)
    # By hand: A and C merged with weights 0.9 x m_A, 0.6 x m_C (their
    # scores), the score is A's confidence x the merged mask's maskness.
    w = nodes['scores'][[0, 2]] / nodes['scores'][[0, 2]].sum()
    merged = (w[:, None, None] * nodes['mask_logits'][[0, 2]]).sum(0)
    prob = merged.sigmoid()
    mask = prob > 0.5
    want = nodes['cls_scores'][0] * prob[mask].mean()
    torch.testing.assert_close(out['scores'][0], want)
    assert out['scores'][0] < nodes['scores'][0]  # C's weaker logits
    torch.testing.assert_close(out['scores'][1], nodes['scores'][1])


def test_split_group_keeps_a_full_score_duplicate_unless_matrix_nms():
    # A graph that links nothing leaves the duplicate C as its own group
    # at its full score; Matrix NMS after purifying decays it by its IoU
    # with A and leaves A and the touching B (IoU 0) as they were.
    head = build_head()
    nodes, out = purify_with(head, -9.)
    torch.testing.assert_close(out['scores'], nodes['scores'])
    _, decayed = purify_with(head, -9., matrix_nms=True)
    assert len(decayed['scores']) == 3
    torch.testing.assert_close(decayed['scores'][:2], nodes['scores'][:2])
    assert decayed['scores'][2] < 0.5 * nodes['scores'][2]


def test_a_false_positive_the_graph_links_stays_out_of_the_instance():
    # The purifier is trained on positive cells and mined descriptors but
    # groups every candidate at inference, false positives too. Here the
    # graph links everything, D (a background blob, confidence 0.3) as
    # well. The paper's grouping merges D into A's instance: its logits
    # enter A's mask with weight 0.3 / 2.6, so the merged mask grows into
    # D's pixels only where they outvote the others (they do not: the
    # mask stays A's with C) and D is gone as an instance. The mask-IoU
    # gate keeps D its own group: A's instance is the one of the three
    # nodes (D left out of its mask) and D stays last at its own score,
    # re-scored or not, and Matrix NMS does not decay it (IoU 0).
    head = build_head()
    confidences = (0.9, 0.8, 0.6, 0.3)
    nodes, out = purify_with(head, 9., confidences)
    assert len(out['scores']) == 1
    assert not out['masks'][0, 0:2, 0:2].any()
    _, three = purify_with(head, 9., confidences[:3], mask_iou_thr=0.5,
                           rescore=True)
    for extra in (dict(), dict(rescore=True), dict(rescore=True,
                                                   matrix_nms=True)):
        _, gated = purify_with(head, 9., confidences, mask_iou_thr=0.5,
                               **extra)
        assert len(gated['scores']) == 3, extra
        masks = gated['mask_probs'] > 0.5
        assert torch.equal(masks[2], nodes['masks'][3]), extra
        assert masks[2].sum() == 4
        torch.testing.assert_close(gated['scores'][2], nodes['scores'][3])
        assert gated['scores'][2] < gated['scores'][:2].min()
        assert not masks[:2, 0:2, 0:2].any()
    torch.testing.assert_close(gated['mask_probs'][:2], three['mask_probs'])
    torch.testing.assert_close(gated['scores'][:2], three['scores'])


def test_matrix_nms_after_purifying_sees_every_group():
    # The duplicate C (0.87) outranks the touching B (0.8); with room for
    # two instances, cutting the groups to max_per_img before Matrix NMS
    # would keep A and C, and Matrix NMS would only decay C: B lost. Matrix
    # NMS sees all three groups (its nms_pre caps them) and keeps A and B.
    head = build_head()
    confidences = (0.9, 0.8, 0.87)
    nodes, out = purify_with(head, -9., confidences,
                             test_cfg=dict(max_per_img=2), matrix_nms=True)
    assert len(out['scores']) == 2
    assert torch.equal(out['mask_probs'] > 0.5, nodes['masks'][:2])
    torch.testing.assert_close(out['scores'], nodes['scores'][:2])
    # Without Matrix NMS the purifier's groups are the output: the best
    # max_per_img of them, as before.
    _, plain = purify_with(head, -9., confidences,
                           test_cfg=dict(max_per_img=2))
    torch.testing.assert_close(plain['scores'],
                               nodes['scores'][[0, 2]])


def test_purify_switches_are_checked():
    with pytest.raises(ValueError, match='purify.mask_iou_thr'):
        build_head(test_cfg=dict(purify=dict(mask_iou_thr=1.5)))
    with pytest.raises(ValueError, match='unknown keys'):
        build_head(test_cfg=dict(purify=dict(rescores=True)))


def test_a_seed_gives_pep_the_baselines_initial_detector():
    """Backbone, neck and base head of a built PEP detector start as its
    Baseline's at one seed (the mechanisms draw from a fork)."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'pep', 'pep_r18_fpn_tiny_synthetic.py'))
    params = []
    for mechanisms in (True, False):
        model = cfg.model.copy()
        if not mechanisms:
            model.mask_head = dict(model.mask_head, excavator=None,
                                   purifier=None)
        torch.manual_seed(0)
        detector = MODELS.build(model)
        detector.init_weights()
        params.append(dict(detector.named_parameters()))
    pep, baseline = params
    assert set(baseline) < set(pep)
    for name, param in baseline.items():
        assert torch.equal(param, pep[name]), name
