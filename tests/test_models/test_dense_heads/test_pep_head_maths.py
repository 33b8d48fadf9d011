"""PEP's equations pinned with values worked out by hand.

Every expected number below is derived in the comments from the rules the
docstrings state (SOLO's level/centre-region assignment, Eq. 1-8 of the
paper), or computed by a brute-force reference that loops over cells; none
is copied from a run. The tiny head of ``pep_testing`` has grids
(12, 10, 8, 6, 4) on a 64 x 64 input, scale ranges (1, 24), (12, 48),
(24, 96), (48, 192), (96, 512), ``pos_scale`` 0.2, C = 3 classes, D = 16
descriptor channels, a 16 x 16 general feature B (stride 4) and an 8 x 8
excavation map.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet.registry import MODELS
from pep_testing import (fpn_feats, img_meta, make_gt, tiny_excavator,
                         tiny_head_cfg)

NUM_CLASSES = 3
GRIDS = (12, 10, 8, 6, 4)
# Flat offset of each level in the concatenation of all cells.
OFFSETS = (0, 144, 244, 308, 344)
NUM_CELLS = 360


def build_head(**overrides):
    torch.manual_seed(0)
    head = MODELS.build(tiny_head_cfg(**overrides))
    head.init_weights()
    return head


def flat(level, row, col):
    return OFFSETS[level] + row * GRIDS[level] + col


class Recorder(nn.Module):
    """A loss stand-in that keeps its inputs and returns a dummy value."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, pred, target, **kwargs):
        self.calls.append((pred.detach().clone(), target.clone()))
        return pred.sum() * 0


# ---------------------------------------------------------------- Eq. 1-2


def tall_gt():
    # Box x 8..24, y 16..40 (16 x 24 px): sqrt(area) = 19.6, which lies in
    # levels 0 (1-24) and 1 (12-48) only. Centre of mass of the pixel
    # centres: x = 15.5 + 0.5 = 16, y = 27.5 + 0.5 = 28.
    return make_gt([[8, 16, 24, 40]], [2])


def test_perceiving_targets_of_a_tall_box():
    head = build_head()
    labels, pos_gt_inds, center_cells, gt_masks, gt_boxes, centers = \
        head._get_targets_single(tall_gt(), img_meta(), (16, 16))
    assert centers.tolist() == [[16., 28.]]
    assert gt_boxes.tolist() == [[8., 16., 24., 40.]]
    # Level 0 (S = 12, cell = 64 / 12 px): centre cell row int(28 / 64 * 12)
    # = 5, col int(16 / 64 * 12) = 3. Half-extents x pos_scale: 1.6 (x),
    # 2.4 (y). Rows int(25.6 / 64 * 12) = 4 .. int(30.4 / 64 * 12) = 5,
    # cols int(14.4 / 64 * 12) = 2 .. int(17.6 / 64 * 12) = 3, all within
    # one cell of the centre.
    # Level 1 (S = 10): centre row int(4.375) = 4, col int(2.5) = 2; rows
    # int(4.0) = 4 .. int(4.75) = 4, cols int(2.25) .. int(2.75) = 2.
    expected = {flat(0, 4, 2), flat(0, 4, 3), flat(0, 5, 2), flat(0, 5, 3),
                flat(1, 4, 2)}
    assert set((pos_gt_inds >= 0).nonzero().flatten().tolist()) == expected
    assert (pos_gt_inds[list(expected)] == 0).all()
    expected_labels = torch.full((NUM_CELLS, ), NUM_CLASSES)
    expected_labels[list(expected)] = 2
    assert labels.tolist() == expected_labels.tolist()
    assert center_cells.tolist() == [[flat(0, 5, 3), flat(1, 4, 2), -1, -1,
                                      -1]]
    # Mask targets at stride 4: cols 8 / 4 = 2 .. 24 / 4 = 6 (exclusive),
    # rows 4 .. 10.
    expected_mask = torch.zeros(16, 16)
    expected_mask[4:10, 2:6] = 1
    assert gt_masks.shape == (1, 16, 16)
    assert torch.equal(gt_masks[0], expected_mask)


def test_level_choice_follows_scale_ranges():
    head = build_head()
    # 40 x 40: sqrt(area) = 40 lies in (12, 48) and (24, 96): levels 1, 2.
    targets = head._get_targets_single(
        make_gt([[12, 12, 52, 52]], [0]), img_meta(), (16, 16))
    levels = {
        next(lvl for lvl in range(5)
             if OFFSETS[lvl] <= i < OFFSETS[lvl] + GRIDS[lvl]**2)
        for i in (targets[1] >= 0).nonzero().flatten().tolist()
    }
    assert levels == {1, 2}
    assert (targets[2][0, [0, 3, 4]] == -1).all()
    assert (targets[2][0, [1, 2]] >= 0).all()


def test_centre_cell_of_a_larger_instance_taken_by_a_smaller_one():
    head = build_head()
    # Both centred at (24, 24). Big: 32 px, levels 1 and 2; small: 12 px,
    # levels 0 and 1. On level 1 both centres fall in cell (3, 3).
    gt = make_gt([[8, 8, 40, 40], [18, 18, 30, 30]], [0, 1])
    labels, pos_gt_inds, center_cells = head._get_targets_single(
        gt, img_meta(), (16, 16))[:3]
    # Level 1 block of the big one: half-extent 3.2 px -> rows/cols
    # int(20.8 / 6.4) = 3 .. int(27.2 / 6.4) = 4; the small one (half 1.2)
    # only (3, 3), which it takes over.
    assert pos_gt_inds[flat(1, 3, 3)] == 1 and labels[flat(1, 3, 3)] == 1
    for cell in ((3, 4), (4, 3), (4, 4)):
        assert pos_gt_inds[flat(1, *cell)] == 0
        assert labels[flat(1, *cell)] == 0
    # The big instance keeps its level-2 centre (row/col int(24 / 8) = 3)
    # and loses its level-1 one; the small one owns both of its centres.
    assert center_cells[0].tolist() == [-1, -1, flat(2, 3, 3), -1, -1]
    assert center_cells[1].tolist() == [flat(0, 4, 4), flat(1, 3, 3), -1, -1,
                                        -1]


def test_loss_perceive_is_cross_entropy_over_the_hand_built_map():
    head = build_head(excavator=None, purifier=None)
    outs = head(fpn_feats())
    losses = head.loss_by_feat(
        *outs, batch_gt_instances=[tall_gt()], batch_img_metas=[img_meta()])
    # Brute force: one (logits, label) pair per cell, level by level, row
    # by row, with the positive cells derived in the test above.
    positives = {(0, 4, 2), (0, 4, 3), (0, 5, 2), (0, 5, 3), (1, 4, 2)}
    logits, targets = [], []
    for lvl, cls in enumerate(outs[1]):
        for r in range(GRIDS[lvl]):
            for c in range(GRIDS[lvl]):
                logits.append(cls[0, :, r, c])
                targets.append(2 if (lvl, r, c) in positives else NUM_CLASSES)
    expected = F.cross_entropy(torch.stack(logits), torch.tensor(targets))
    torch.testing.assert_close(losses['loss_perceive'], expected)


# ---------------------------------------------------------------- Eq. 6-7


def two_squares():
    # Two touching 16 x 16 same-class squares, centres (16, 16) and
    # (32, 16); each has centre cells on levels 0 and 1 (sqrt(area) = 16).
    return make_gt([[8, 8, 24, 24], [24, 8, 40, 24]], [1, 1])


def test_mask_loss_gets_one_dynamic_conv_row_per_positive_cell():
    head = build_head(excavator=None, purifier=None)
    head.loss_mask = Recorder()
    outs = head(fpn_feats())
    head.loss_by_feat(
        *outs, batch_gt_instances=[tall_gt()], batch_img_metas=[img_meta()])
    (preds, targets), = head.loss_mask.calls
    cells = [(0, 4, 2), (0, 4, 3), (0, 5, 2), (0, 5, 3), (1, 4, 2)]
    assert preds.shape == targets.shape == (5, 16, 16)
    mask_feats = outs[2][0]
    expected_target = torch.zeros(16, 16)
    expected_target[4:10, 2:6] = 1
    for row, (lvl, r, c) in enumerate(cells):
        desc = outs[0][lvl][0, :, r, c]
        # Eq. 6: M = I (x) B, a 1x1 convolution of B with the descriptor.
        expected = F.conv2d(mask_feats[None], desc.view(1, -1, 1, 1))[0, 0]
        torch.testing.assert_close(preds[row], expected)
        assert torch.equal(targets[row], expected_target)


def test_mask_loss_rows_include_the_mined_descriptors():
    head = build_head(purifier=None)
    head.loss_mask = Recorder()
    mined_out = []
    excavator_loss = head.excavator.loss

    def spy(*args, **kwargs):
        out = excavator_loss(*args, **kwargs)
        mined_out.append(out)
        return out

    head.excavator.loss = spy
    outs = head(fpn_feats())
    gt = two_squares()
    head.loss_by_feat(
        *outs, batch_gt_instances=[gt], batch_img_metas=[img_meta()])
    (preds, targets), = head.loss_mask.calls
    (losses, (mined, )), = mined_out
    # Positive cells: the squares' centres are (16, 16) and (32, 16) and
    # their half-extents x pos_scale 1.6 px. Level 0 (cell of x: x * 12 / 64): rows int(14.4 * 12 / 64) = 2 .. int(17.6 * 12 / 64) = 3,
    # cols 2..3 (left) and int(30.4 * 12 / 64) = 5 .. int(33.6 * 12 / 64)
    # = 6 (right). Level 1 (x * 10 / 64): row 2; col 2 (left);
    # int(30.4 / 6.4) = 4 .. int(33.6 / 6.4) = 5 (right). 11 cells.
    # Mined: the two originals per square (one per level) each excavate the
    # other square: 4 mined rows.
    assert mined['gt_inds'].numel() == 4
    assert preds.shape[0] == 11 + 4
    mask_feats = outs[2][0]
    for k in range(4):
        expected = torch.einsum('d,dhw->hw', mined['descriptors'][k].detach(),
                                mask_feats)
        torch.testing.assert_close(preds[11 + k], expected)
    mask0 = torch.zeros(16, 16)
    mask0[2:6, 2:6] = 1
    mask1 = torch.zeros(16, 16)
    mask1[2:6, 6:10] = 1
    for k, g in enumerate(mined['gt_inds'].tolist()):
        assert torch.equal(targets[11 + k], (mask0, mask1)[g])
    # A mined descriptor always stands for the *other* square.
    assert sorted(mined['gt_inds'].tolist()) == [0, 0, 1, 1]


# ---------------------------------------------------------------- Eq. 3


def focal_terms(logit, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss of one logit for target 1 and target 0."""
    p = 1 / (1 + math.exp(-logit))
    pos = -alpha * (1 - p)**gamma * math.log(p)
    neg = -(1 - alpha) * p**gamma * math.log(1 - p)
    return pos, neg


def test_loss_excavate_value_and_normalisation():
    head = build_head(purifier=None)
    c = -1.5
    head.excavator.excavate_maps = (
        lambda feat, desc, xy: feat.new_full((desc.size(0), 8, 8), c))
    outs = head(fpn_feats())
    losses = head.loss_by_feat(
        *outs, batch_gt_instances=[two_squares()],
        batch_img_metas=[img_meta()])
    # Four originals (two levels x two squares); each has one neighbour
    # whose centre cell on the 8 x 8 map, (int(16 / 8), int(32 / 8)) =
    # (2, 4) or (2, 2), grows to a 3 x 3 block (center_radius 1): 9
    # positives and 55 negatives per map. Normalised by the positives plus
    # one unit per map: 4 * 9 + 4 = 40.
    pos, neg = focal_terms(c)
    expected = 4 * (9 * pos + 55 * neg) / 40
    assert losses['loss_excavate'].item() == pytest.approx(expected, rel=1e-5)


def touching_pair():
    boxes = torch.tensor([[8., 8, 24, 24], [24, 8, 40, 24]])
    centers = torch.tensor([[16., 16.], [32., 16.]])
    return boxes, centers


def excavate_one(exc, desc, ori_xy, ori_gt_inds, labels):
    """The excavator's batch loss on one 64 x 64 image of touching_pair."""
    boxes, centers = touching_pair()
    return exc.loss(
        torch.zeros(1, 4, 8, 8),
        [dict(descriptors=desc, xy=ori_xy, gt_inds=ori_gt_inds)],
        [dict(boxes=boxes, centers=centers, labels=labels)], (64, 64))


def expected_heat():
    """Targets of E_ind for originals of GT 0 and GT 1 of touching_pair."""
    heat = torch.zeros(2, 8, 8)
    heat[0, 1:4, 3:6] = 1  # GT 1's centre cell (row 2, col 4)
    heat[1, 1:4, 1:4] = 1  # GT 0's centre cell (row 2, col 2)
    return heat


def test_excavate_targets_by_hand():
    exc = tiny_excavator()
    boxes, centers = touching_pair()
    heat, near = exc.get_targets(boxes, centers, torch.tensor([0, 1]),
                                 (8, 8), (64, 64))
    assert torch.equal(heat, expected_heat())
    assert near.tolist() == [[False, True], [True, False]]


@pytest.mark.parametrize('agree', [True, False])
def test_loss_excavate_direction(agree):
    exc = tiny_excavator(num_neg_keys=0)
    sign = 1 if agree else -1
    logits = sign * 8 * (2 * expected_heat() - 1)
    exc.excavate_maps = lambda feat, desc, xy: logits
    losses, _ = excavate_one(exc, torch.randn(2, 8), torch.zeros(2, 2),
                             torch.tensor([0, 1]), torch.tensor([0, 0]))
    # Per pixel: agreeing logits cost at most alpha * (1 - p)^2 * -log(p)
    # with p = sigmoid(8); reversed ones at least 0.25 * p^2 * -log(1 - p).
    # Normalised by the 18 positives plus one unit per map: 20.
    pos_at_8, neg_at_8 = focal_terms(8.0)
    pos_at_minus_8, neg_at_minus_8 = focal_terms(-8.0)
    if agree:  # +8 on the 18 positives, -8 on the 110 negatives
        expected = (18 * pos_at_8 + 110 * neg_at_minus_8) / 20
        assert losses['loss_excavate'].item() < 1e-6
    else:
        expected = (18 * pos_at_minus_8 + 110 * neg_at_8) / 20
        assert losses['loss_excavate'].item() > 10
    assert losses['loss_excavate'].item() == pytest.approx(
        expected, rel=1e-4, abs=1e-8)


# ---------------------------------------------------------------- Eq. 4


def test_mined_keys_classes_and_negative_keys():
    exc = tiny_excavator(num_neg_keys=1, max_keys_train=8)
    # One peak per map far from every GT centre: row 6, col 6 (a negative
    # key for both originals); everything else low.
    logits = torch.full((2, 8, 8), -6.)
    logits[:, 6, 6] = 2.
    exc.excavate_maps = lambda feat, desc, xy: logits
    calls = []
    mine = exc.mine

    def spy(desc, ori_xy, key_xy, **kwargs):
        out = mine(desc, ori_xy, key_xy, **kwargs)
        calls.append((desc, ori_xy, key_xy, out[1]))
        return out

    exc.mine = spy
    desc = torch.randn(2, 8)
    ori_xy = torch.tensor([[-0.5, -0.5], [0.0, -0.5]])
    losses, (mined, ) = excavate_one(exc, desc, ori_xy, torch.tensor([0, 1]),
                                     torch.tensor([1, 1]))
    (key_desc, key_ori_xy, key_xy, cls_logits), = calls
    cell = lambda r, c: [(c + 0.5) / 8 * 2 - 1, (r + 0.5) / 8 * 2 - 1]  # noqa
    # Positive keys first (original 0 -> GT 1's centre cell (2, 4),
    # original 1 -> GT 0's (2, 2)), then one negative per original at the
    # false peak (6, 6).
    assert key_xy.tolist() == [cell(2, 4), cell(2, 2), cell(6, 6), cell(6, 6)]
    assert torch.equal(key_desc, desc[[0, 1, 0, 1]])
    assert torch.equal(key_ori_xy, ori_xy[[0, 1, 0, 1]])
    labels = torch.tensor([1, 1, 2, 2])  # class 1 twice, background C = 2
    # L_PE: the mean over the four key pixels.
    expected = F.cross_entropy(cls_logits, labels, reduction='sum') / 4
    torch.testing.assert_close(losses['loss_excavate_cls'], expected)
    # Only the positive keys come back as mined descriptors.
    assert mined['gt_inds'].tolist() == [1, 0]
    assert mined['xy'].tolist() == [cell(2, 4), cell(2, 2)]


def test_the_mined_descriptor_sees_the_original_and_the_coordinates():
    # Eq. 4: [I, key xy, key xy - original xy] -> MLP.
    exc = tiny_excavator()
    assert exc.mine_fcs[0].in_features == 8 + 4
    desc, ori_xy = torch.randn(1, 8), torch.zeros(1, 2)
    key_xy = torch.tensor([[0.25, -0.25]])
    mined, cls_logits = exc.mine(desc, ori_xy, key_xy)
    want = exc.mine_fcs(torch.cat([desc, key_xy, key_xy - ori_xy], 1))
    torch.testing.assert_close(mined, want)
    torch.testing.assert_close(cls_logits, exc.key_cls(want))


def test_negative_keys_never_sit_on_a_gt_centre():
    exc = tiny_excavator(num_neg_keys=1)
    # The strongest predicted peaks sit on the GT centres; they are
    # positives, so the negative must come from elsewhere.
    logits = torch.full((2, 8, 8), -6.)
    logits[:, 2, 2] = logits[:, 2, 4] = 5.
    logits[:, 7, 0] = 1.
    exc.excavate_maps = lambda feat, desc, xy: logits
    calls = []
    mine = exc.mine
    exc.mine = lambda d, o, k, **kw: calls.append(k) or mine(d, o, k, **kw)
    excavate_one(exc, torch.randn(2, 8), torch.zeros(2, 2),
                 torch.tensor([0, 1]), torch.tensor([0, 0]))
    negatives = calls[0][2:]
    # Each original's map has both GT centres (sigmoid 5) masked out (the
    # other's block dilated by the radius covers them), so its best
    # remaining peak is (row 7, col 0) at sigmoid(1).
    assert negatives.tolist() == [[-0.875, 0.875]] * 2


# ---------------------------------------------------------------- Eq. 5


def test_loss_graph_is_bce_over_off_diagonal_pairs():
    purifier = MODELS.build(
        dict(type='PEPPurifier', in_channels=8, embed_channels=8))
    torch.manual_seed(1)
    desc, xy = torch.randn(4, 8), torch.rand(4, 2)
    gt_inds = torch.tensor([3, 3, 5, 7])
    loss = purifier.loss([desc], [xy], [gt_inds])['loss_graph']
    torch.testing.assert_close(loss, bce_over_pairs(purifier, desc, xy,
                                                    gt_inds))


def bce_over_pairs(purifier, desc, xy, gt_inds):
    """Brute force Eq. 5: mean BCE of every ordered pair i != j against
    G_M (1 iff same GT instance)."""
    logits = purifier(desc, xy)
    n = len(gt_inds)
    total = 0.
    for i in range(n):
        for j in range(n):
            if i != j:
                same = float(gt_inds[i] == gt_inds[j])
                p = torch.sigmoid(logits[i, j])
                total -= same * torch.log(p) + (1 - same) * torch.log(1 - p)
    return total / (n * (n - 1))


def test_graph_loss_is_the_mean_over_all_pairs_of_the_batch():
    purifier = MODELS.build(
        dict(type='PEPPurifier', in_channels=8, embed_channels=8))
    torch.manual_seed(2)
    desc, xy = torch.randn(5, 8), torch.rand(5, 2)
    gt_inds = torch.tensor([0, 0, 1, 1, 1])
    # Images of 3, 2, 1 and 0 nodes: 6 + 2 + 0 + 0 pairs.
    loss = purifier.loss([desc[:3], desc[3:], desc[:1], desc[:0]],
                         [xy[:3], xy[3:], xy[:1], xy[:0]],
                         [gt_inds[:3], gt_inds[3:], gt_inds[:1],
                          gt_inds[:0]])['loss_graph']
    expected = (bce_over_pairs(purifier, desc[:3], xy[:3], gt_inds[:3]) * 6 +
                bce_over_pairs(purifier, desc[3:], xy[3:], gt_inds[3:]) *
                2) / 8
    torch.testing.assert_close(loss, expected)
    # With no pair at all it is an exact zero that still reaches every
    # parameter.
    lone = purifier.loss([desc[:1]], [xy[:1]], [gt_inds[:1]])['loss_graph']
    assert lone.item() == 0
    lone.backward()
    assert all(p.grad is not None for p in purifier.parameters())


def test_graph_samples_at_most_max_descriptors_nodes():
    purifier = MODELS.build(
        dict(type='PEPPurifier', in_channels=8, embed_channels=8,
             max_descriptors=3))
    seen = []
    purifier._pair_loss = lambda d, xy, g: seen.append(len(d)) or (0., 0)
    purifier.loss([torch.randn(7, 8), torch.randn(2, 8)],
                  [torch.rand(7, 2), torch.rand(2, 2)],
                  [torch.arange(7), torch.arange(2)])
    assert seen == [3, 2]


def test_graph_nodes_are_originals_and_mined_with_identities():
    head = build_head()
    graph_calls, mined_out = [], []
    purifier_loss, excavator_loss = head.purifier.loss, head.excavator.loss

    def graph_spy(batch_desc, batch_xy, batch_inds):
        out = purifier_loss(batch_desc, batch_xy, batch_inds)
        graph_calls.append((batch_desc[0].detach(), batch_xy[0],
                            batch_inds[0], out))
        return out

    def exc_spy(*args, **kwargs):
        out = excavator_loss(*args, **kwargs)
        mined_out.append(out[1][0])
        return out

    head.purifier.loss, head.excavator.loss = graph_spy, exc_spy
    outs = head(fpn_feats())
    losses = head.loss_by_feat(
        *outs, batch_gt_instances=[two_squares()],
        batch_img_metas=[img_meta()])
    (desc, xy, inds, graph_losses), = graph_calls
    mined, = mined_out
    # Positive cells in flat order (derived in the mask-loss test above):
    # level 0 rows 2-3, cols 2-3 (GT 0) and 5-6 (GT 1); level 1 (2, 2)
    # GT 0, (2, 4) and (2, 5) GT 1.
    cells = [(0, 2, 2, 0), (0, 2, 3, 0), (0, 2, 5, 1), (0, 2, 6, 1),
             (0, 3, 2, 0), (0, 3, 3, 0), (0, 3, 5, 1), (0, 3, 6, 1),
             (1, 2, 2, 0), (1, 2, 4, 1), (1, 2, 5, 1)]
    assert inds.tolist() == [g for *_, g in cells] + mined['gt_inds'].tolist()
    for k, (lvl, r, c, _) in enumerate(cells):
        torch.testing.assert_close(desc[k], outs[0][lvl][0, :, r, c])
        s = GRIDS[lvl]
        assert xy[k].tolist() == pytest.approx(
            [(c + 0.5) / s * 2 - 1, (r + 0.5) / s * 2 - 1])
    torch.testing.assert_close(desc[11:], mined['descriptors'].detach())
    # All 15 nodes enter the graph (<= max_descriptors), and the head
    # reports the purifier's finished loss.
    torch.testing.assert_close(
        losses['loss_graph'],
        bce_over_pairs(head.purifier, desc, xy, inds).detach())
    torch.testing.assert_close(losses['loss_graph'],
                               graph_losses['loss_graph'])


# ------------------------------------------------------------- inference


REGIONS = {
    # name: (rows, cols) on the 16 x 16 general feature
    'A': (slice(2, 6), slice(2, 6)),
    'A_shift': (slice(2, 6), slice(3, 7)),
    'B': (slice(10, 14), slice(10, 14)),
    'C': (slice(2, 6), slice(10, 14)),
}


def region_feats():
    """B whose channel k is +6 inside region k and -6 outside, so that the
    one-hot descriptor e_k gives a mask logit map of +-6 on region k."""
    feats = torch.zeros(16, 16, 16)
    for k, (rows, cols) in enumerate(REGIONS.values()):
        feats[k] = -6
        feats[k, rows, cols] = 6
    return feats


def onehot(name):
    return torch.eye(16)[list(REGIONS).index(name)]


def region_box(name):
    rows, cols = REGIONS[name]
    return [cols.start * 4., rows.start * 4., cols.stop * 4., rows.stop * 4.]


def single_image_inputs(head, cells):
    """Class scores and descriptors of all cells, with ``cells`` a list of
    (flat cell, label, score, region)."""
    scores = torch.zeros(NUM_CELLS, NUM_CLASSES)
    desc = torch.zeros(NUM_CELLS, 16)
    for cell, label, score, region in cells:
        scores[cell, label] = score
        desc[cell] = onehot(region)
    strides = torch.cat([
        torch.full((s * s, ), float(st)) for s, st in zip(GRIDS, head.strides)
    ])
    return scores, desc, strides


def predict_single(head, cells, exc_feat=None, **cfg):
    scores, desc, strides = single_image_inputs(head, cells)
    test_cfg = {**head.test_cfg, **cfg}
    with torch.no_grad():
        return head._predict_by_feat_single(scores, desc, region_feats(),
                                            exc_feat, head._cell_xy(),
                                            strides, img_meta(), True,
                                            test_cfg)


def fixed_similarity(head, logits):
    head.purifier.forward = lambda desc, xy: logits


def test_grouping_follows_group_thr():
    head = build_head(excavator=None)
    cells = [(flat(0, 1, 1), 0, 0.9, 'A'), (flat(0, 1, 2), 0, 0.3,
                                            'A_shift'),
             (flat(0, 8, 8), 0, 0.7, 'B')]
    # Candidates reach the graph best first: A, B, A'. sigmoid(2) = 0.88
    # links A and A'; sigmoid(-5) links nothing else.
    fixed_similarity(
        head, torch.tensor([[9., -5., 2.], [-5., 9., -5.], [2., -5., 9.]]))
    maskness = torch.sigmoid(torch.tensor(6.)).item()
    grouped = predict_single(head, cells, purify=dict(group_thr=0.5))
    assert len(grouped) == 2
    # The group's score is its leader's (category x maskness), and the
    # merged mask the score-weighted mean of the members' logits:
    # (0.9 * L_A + 0.3 * L_A') / 1.2 is +3 on A's first column and -3 on
    # the column A' adds, so the merged mask is region A itself, at 4x.
    assert grouped.scores.tolist() == pytest.approx(
        [0.9 * maskness, 0.7 * maskness], rel=1e-5)
    assert grouped.bboxes.tolist() == [region_box('A'), region_box('B')]
    # 16 x 16 px less the four corners: bilinear 4x upsampling puts a
    # corner pixel 0.625 x 0.625 of the way to the region, 0.39 < 0.5.
    assert grouped.masks.sum((1, 2)).tolist() == [252, 252]
    # Above the link probability every descriptor is its own instance.
    apart = predict_single(head, cells, purify=dict(group_thr=0.95))
    assert len(apart) == 3
    assert apart.bboxes.tolist() == [
        region_box('A'), region_box('B'), region_box('A_shift')
    ]


def test_merged_mask_is_the_score_weighted_mean_of_logits():
    head = build_head(excavator=None)
    # The leader (0.5) is region A; four followers (0.375 each) are A'
    # (A shifted one cell right). Weights 0.5 / 2 = 0.25 and 0.75 in all:
    # the merged logit is -3 on A's first column and +3 on A''s last, so
    # the group's mask is A' although its leader is A (merge='best' would
    # give A), and its score is the leader's.
    cells = [(flat(0, 1, 1), 0, 0.5, 'A')] + [
        (flat(0, 4, 2 * k), 0, 0.375, 'A_shift') for k in range(4)
    ]
    fixed_similarity(head, torch.full((5, 5), 9.))
    res = predict_single(head, cells, purify=dict(group_thr=0.5))
    assert len(res) == 1
    assert res.bboxes.tolist() == [region_box('A_shift')]
    maskness = torch.sigmoid(torch.tensor(6.)).item()
    assert res.scores.item() == pytest.approx(0.5 * maskness, rel=1e-5)


def test_point_nms_drops_a_neighbouring_non_maximum():
    head = build_head(excavator=None, purifier=None)
    cls = [torch.full((1, NUM_CLASSES + 1, s, s), 0.) for s in GRIDS]
    desc = [torch.zeros(1, 16, s, s) for s in GRIDS]
    for c in cls:
        c[:, -1] = 10.  # background everywhere
    # Two level-0 neighbours of class 0; (3, 3) peaks, (3, 4) is 1 lower.
    # SOLO's 2 x 2 point NMS compares a cell with its upper-left window,
    # so (3, 4) sees (3, 3) and is dropped.
    cls[0][0, 0, 3, 3], cls[0][0, -1, 3, 3] = 10., 0.
    cls[0][0, 0, 3, 4], cls[0][0, -1, 3, 4] = 9., 0.
    desc[0][0, :, 3, 3] = onehot('A')
    desc[0][0, :, 3, 4] = onehot('B')
    with torch.no_grad():
        res, = head.predict_by_feat(
            desc, cls, region_feats()[None], None,
            batch_img_metas=[img_meta()])
    assert len(res) == 1
    assert res.bboxes.tolist() == [region_box('A')]
    assert res.labels.tolist() == [0]


def test_score_thr_keeps_only_confident_originals():
    head = build_head(excavator=None, purifier=None)
    cells = [(flat(0, 1, 1), 0, 0.9, 'A'), (flat(0, 8, 8), 2, 0.2, 'B')]
    assert len(predict_single(head, cells, score_thr=0.1)) == 2
    res = predict_single(head, cells, score_thr=0.3)
    assert res.labels.tolist() == [0]
    assert res.bboxes.tolist() == [region_box('A')]


def mock_excavation(head, peak_logit):
    """One key per original at map cell (2, 5) with a fixed mined
    descriptor for region C, class 1 with probability ~1."""
    logits = torch.full((8, 8), -10.)
    logits[2, 5] = peak_logit
    head.excavator.excavate_maps = (
        lambda feat, desc, xy: logits.expand(desc.size(0), 8, 8))
    keys = []

    def mine(desc, ori_xy, key_xy):
        keys.append(key_xy)
        cls_logits = torch.tensor([[-10., 10., -10., -10.]])
        return (onehot('C').expand(key_xy.size(0), 16),
                cls_logits.expand(key_xy.size(0), 4))

    head.excavator.mine = mine
    return keys


def test_confident_mined_key_adds_a_detection():
    head = build_head(purifier=None)
    keys = mock_excavation(head, peak_logit=5.)
    cells = [(flat(0, 1, 1), 0, 0.9, 'A')]
    res = predict_single(
        head, cells, exc_feat=torch.zeros(8, 8, 8),
        excavate=dict(max_originals=10, key_thr=0.5, max_keys=4))
    # The key sits at the centre of map cell (row 2, col 5).
    assert keys[0].tolist() == [[(5 + 0.5) / 4 - 1, (2 + 0.5) / 4 - 1]]
    maskness = torch.sigmoid(torch.tensor(6.)).item()
    key_conf = torch.sigmoid(torch.tensor(5.)).item()
    p_cls = torch.softmax(torch.tensor([-10., 10., -10., -10.]), 0)[1].item()
    assert sorted(res.labels.tolist()) == [0, 1]
    mined = res.labels.tolist().index(1)
    assert res.bboxes[mined].tolist() == region_box('C')
    assert res.scores[mined].item() == pytest.approx(
        p_cls * key_conf * maskness, rel=1e-4)


def test_key_thr_one_adds_no_detection():
    head = build_head(purifier=None)
    mock_excavation(head, peak_logit=5.)
    res = predict_single(
        head, [(flat(0, 1, 1), 0, 0.9, 'A')],
        exc_feat=torch.zeros(8, 8, 8),
        excavate=dict(max_originals=10, key_thr=1.0, max_keys=4))
    assert res.labels.tolist() == [0]


def test_empty_results_follow_rescale():
    head = build_head()
    meta = dict(img_meta(), img_shape=(60, 50, 3), ori_shape=(120, 100, 3))
    for rescale, shape in ((True, (120, 100)), (False, (60, 50))):
        res = head._empty_results(meta, rescale, torch.device('cpu'))
        assert res.masks.shape == (0, *shape)
        assert res.masks.dtype == torch.bool and res.labels.dtype == torch.long
        assert res.scores.shape == (0, ) and res.bboxes.shape == (0, 4)


def spy_excavator_predict(head, scores=None):
    """Record the originals the excavator receives; optionally return one
    mined descriptor (region C) with the given class scores."""
    calls = []

    def predict(exc_feat, desc, ori_xy, cfg):
        calls.append(desc)
        n = 0 if scores is None else 1
        return dict(
            descriptors=onehot('C')[None].expand(n, 16),
            xy=torch.zeros(n, 2),
            scores=torch.tensor([scores] if n else []).reshape(n, 3))

    head.excavator.predict = predict
    return calls


@pytest.mark.parametrize('max_originals,received', [(1, 1), (30, 20)])
def test_excavator_receives_the_best_max_originals(max_originals, received):
    head = build_head(purifier=None)
    calls = spy_excavator_predict(head)
    # 20 originals (more than D = 16 channels), best first.
    cells = [(flat(0, r, c), 0, 0.9 - 0.01 * (4 * r + c), 'A')
             for r in range(5) for c in range(4)]
    predict_single(head, cells, exc_feat=torch.zeros(8, 8, 8),
                   excavate=dict(max_originals=max_originals, key_thr=0.5,
                                 max_keys=4))
    assert len(calls[0]) == received
    torch.testing.assert_close(calls[0][0], onehot('A'))


def test_mined_descriptor_needs_a_score_above_score_thr():
    for score, kept in ((0.25, False), (0.2500001, True)):
        head = build_head(purifier=None)
        spy_excavator_predict(head, scores=[score, 0., 0.])
        res = predict_single(
            head, [(flat(0, 1, 1), 1, 0.9, 'A')],
            exc_feat=torch.zeros(8, 8, 8), score_thr=0.25)
        assert (0 in res.labels.tolist()) == kept


def test_key_pixel_needs_a_peak_above_key_thr():
    # sigmoid(0) = 0.5 exactly: not above key_thr = 0.5.
    head = build_head(purifier=None)
    keys = mock_excavation(head, peak_logit=0.)
    res = predict_single(
        head, [(flat(0, 1, 1), 0, 0.9, 'A')],
        exc_feat=torch.zeros(8, 8, 8),
        excavate=dict(max_originals=10, key_thr=0.5, max_keys=4))
    assert keys[0].numel() == 0 and res.labels.tolist() == [0]


def test_class_agnostic_grouping_reaches_the_purifier():
    head = build_head(excavator=None)
    cells = [(flat(0, 1, 1), 0, 0.9, 'A'), (flat(0, 1, 2), 1, 0.8, 'A_shift')]
    fixed_similarity(head, torch.full((2, 2), 9.))
    apart = predict_single(head, cells, purify=dict(group_thr=0.5))
    merged = predict_single(
        head, cells, purify=dict(group_thr=0.5, class_agnostic=True))
    assert sorted(apart.labels.tolist()) == [0, 1]
    assert merged.labels.tolist() == [0]


def test_group_with_an_empty_merged_mask_is_dropped():
    head = build_head(excavator=None)
    # Two equal-score members with opposite logits everywhere (region A and
    # its complement): the merged logit is 0, probability 0.5 exactly, not
    # above mask_thr, so the merged mask is empty and the group dropped.
    # Logits +-20 make both maskness factors exactly 1.0 in float32, so the
    # merge weights are exactly 1/2 each.
    feats = region_feats() * 20 / 6
    feats[15] = -feats[0]
    head_feats = feats
    scores = torch.zeros(NUM_CELLS, NUM_CLASSES)
    desc = torch.zeros(NUM_CELLS, 16)
    scores[flat(0, 1, 1), 0] = scores[flat(0, 1, 2), 0] = 0.8
    desc[flat(0, 1, 1)] = onehot('A')
    desc[flat(0, 1, 2), 15] = 1.
    fixed_similarity(head, torch.full((2, 2), 9.))
    strides = single_image_inputs(head, [])[2]
    with torch.no_grad():
        res = head._predict_by_feat_single(scores, desc, head_feats, None,
                                           head._cell_xy(), strides,
                                           img_meta(), True)
    assert len(res) == 0


def one_cell_group():
    """Two equal-score members, regions rows/cols 2-5 and 5-8, merged into
    one group: the equal-weight merge is +6 on their one shared cell (5, 5)
    and 0 (probability 0.5) on the rest of either."""
    head = build_head(excavator=None)
    feats = torch.full((16, 16, 16), -6.)
    feats[0, 2:6, 2:6] = 6.
    feats[1, 5:9, 5:9] = 6.
    scores = torch.zeros(NUM_CELLS, NUM_CLASSES)
    desc = torch.zeros(NUM_CELLS, 16)
    scores[flat(0, 1, 1), 0] = scores[flat(0, 1, 2), 0] = 0.8
    desc[flat(0, 1, 1), 0] = desc[flat(0, 1, 2), 1] = 1.
    fixed_similarity(head, torch.full((2, 2), 9.))
    strides = single_image_inputs(head, [])[2]
    with torch.no_grad():
        return head._predict_by_feat_single(scores, desc, feats, None,
                                            head._cell_xy(), strides,
                                            img_meta(), True)


def test_group_with_a_one_cell_merged_mask_is_kept():
    # The merged mask has an area of one cell: the group stays.
    res = one_cell_group()
    assert len(res) == 1 and res.masks.any()


# Matrix NMS on two same-class masks A and A' (A shifted one cell): mask IoU
# 12 / 20 = 0.6 on the 16 x 16 feature; the lower one is decayed by
# exp(-sigma * 0.6^2) (gaussian) or (1 - 0.6) (linear), the top one not.
TWO_OVERLAPPING = [(flat(0, 1, 1), 0, 0.9, 'A'), (flat(0, 1, 2), 0, 0.8,
                                                  'A_shift')]


@pytest.mark.parametrize('cfg,decay', [
    (dict(kernel='gaussian', sigma=2.0), math.exp(-2.0 * 0.36)),
    (dict(kernel='gaussian', sigma=1.0), math.exp(-1.0 * 0.36)),
    (dict(kernel='linear'), 0.4),
])
def test_matrix_nms_follows_test_cfg(cfg, decay):
    head = build_head(excavator=None, purifier=None)
    res = predict_single(head, TWO_OVERLAPPING, **cfg)
    maskness = torch.sigmoid(torch.tensor(6.)).item()
    assert res.scores.tolist() == pytest.approx(
        [0.9 * maskness, 0.8 * maskness * decay], rel=1e-4)


def test_matrix_nms_filter_thr_and_nms_pre():
    head = build_head(excavator=None, purifier=None)
    maskness = torch.sigmoid(torch.tensor(6.)).item()
    # 0.8 * 0.997 * exp(-0.72) = 0.388: kept above filter_thr 0.38, dropped
    # above 0.39.
    assert len(predict_single(head, TWO_OVERLAPPING, filter_thr=0.38)) == 2
    assert len(predict_single(head, TWO_OVERLAPPING, filter_thr=0.39)) == 1
    # nms_pre=1: only the best candidate reaches Matrix NMS at all.
    res = predict_single(head, TWO_OVERLAPPING, nms_pre=1)
    assert res.scores.tolist() == pytest.approx([0.9 * maskness])


def test_resize_handles_three_element_shapes_and_rescale():
    head = build_head(excavator=None, purifier=None)
    scores, desc, strides = single_image_inputs(head, TWO_OVERLAPPING[:1])
    # A 48 x 40 image padded to 64 x 64, originally 96 x 80 (x2).
    meta = dict(img_meta(), img_shape=(48, 40, 3), ori_shape=(96, 80, 3))
    with torch.no_grad():
        small, big = (head._predict_by_feat_single(
            scores, desc, region_feats(), None, head._cell_xy(), strides,
            meta, rescale) for rescale in (False, True))
    assert small.masks.shape == (1, 48, 40)
    assert big.masks.shape == (1, 96, 80)
    # Region A: 8..24 px in the input frame, x2 in the original.
    assert small.bboxes.tolist() == [region_box('A')]
    assert big.bboxes.tolist() == [[16., 16., 48., 48.]]


def test_final_masks_need_a_probability_above_mask_thr():
    # Around the one-cell group's cell the merged probability is exactly 0.5
    # over whole cells, e.g. at pixel (10, 10) (cell (2, 2), only in the
    # first member): not above mask_thr = 0.5.
    res = one_cell_group()
    assert not res.masks[0, 10, 10] and res.masks[0, 22, 22]


# ------------------------------------------- targets at edges and bounds


def test_single_pixel_instance_centre_and_validity():
    head = build_head()
    gt = make_gt([[10, 20, 11, 21]], [1])
    _, pos_gt_inds, center_cells, _, _, centers = head._get_targets_single(
        gt, img_meta(), (16, 16))
    assert centers.tolist() == [[10.5, 20.5]]
    # sqrt(area) = 1 is in level 0's (1, 24): centre cell (int(20.5 * 12 /
    # 64), int(10.5 * 12 / 64)) = (3, 1).
    assert center_cells[0].tolist() == [flat(0, 3, 1), -1, -1, -1, -1]
    assert (pos_gt_inds >= 0).sum() == 1


def test_empty_mask_is_never_a_positive_even_with_a_zero_range():
    head = build_head(scale_ranges=((0, 512), ) * 5)
    gt = make_gt([[10, 10, 10, 30]], [0])
    targets = head._get_targets_single(gt, img_meta(), (16, 16))
    assert not (targets[1] >= 0).any() and (targets[2] < 0).all()


def test_size_equal_to_a_range_end_belongs_to_that_level():
    head = build_head()
    # 24 x 24: sqrt(area) = 24 closes (1, 24), lies in (12, 48) and opens
    # (24, 96): levels 0, 1 and 2.
    targets = head._get_targets_single(
        make_gt([[20, 20, 44, 44]], [0]), img_meta(), (16, 16))
    assert (targets[2][0, :3] >= 0).all() and (targets[2][0, 3:] < 0).all()


def test_corner_instances_keep_their_corner_centre_cells():
    head = build_head()
    # 4 x 4 px objects in the top-left and bottom-right corners: level 0
    # centre cells (0, 0) (flat index 0) and (11, 11).
    gt = make_gt([[0, 0, 4, 4], [60, 60, 64, 64]], [0, 1])
    _, pos_gt_inds, center_cells = head._get_targets_single(
        gt, img_meta(), (16, 16))[:3]
    assert center_cells[:, 0].tolist() == [0, flat(0, 11, 11)]
    assert pos_gt_inds[0] == 0 and pos_gt_inds[flat(0, 11, 11)] == 1


def test_positive_block_is_at_most_one_cell_from_the_centre():
    head = build_head(pos_scale=1.0)
    # pos_scale 1: the centre region is the whole 40 x 40 box, but only the
    # 3 x 3 cells around the centre cell are positive. Level 1 (S = 10):
    # centre (32, 32) -> cell (5, 5); rows/cols 4..6.
    targets = head._get_targets_single(
        make_gt([[12, 12, 52, 52]], [0]), img_meta(), (16, 16))
    level1 = (targets[1][OFFSETS[1]:OFFSETS[2]] >= 0).view(10, 10)
    expected = torch.zeros(10, 10, dtype=torch.bool)
    expected[4:7, 4:7] = True
    assert torch.equal(level1, expected)


def test_gt_masks_smaller_than_the_padded_input_are_padded():
    head = build_head()
    meta = img_meta()
    padded = make_gt([[8, 16, 24, 40]], [2])
    small = make_gt([[8, 16, 24, 40]], [2], shape=(48, 40))
    ref = head._get_targets_single(padded, meta, (16, 16))
    out = head._get_targets_single(small, meta, (16, 16))
    for a, b in zip(ref, out):
        torch.testing.assert_close(a, b)


def test_originals_include_the_corner_cell():
    head = build_head(purifier=None)
    seen = []
    loss = head.excavator.loss

    def spy(exc_feats, batch_originals, *args):
        seen.append(batch_originals)
        return loss(exc_feats, batch_originals, *args)

    head.excavator.loss = spy
    gt = make_gt([[0, 0, 6, 6], [6, 0, 12, 6]], [0, 0])
    head.loss_by_feat(*head(fpn_feats()), batch_gt_instances=[gt],
                      batch_img_metas=[img_meta()])
    # Cell (0, 0) of level 0 (flat index 0) is the first object's centre.
    corner = torch.tensor([(0 + 0.5) / 12 * 2 - 1] * 2)
    assert (seen[0][0]['xy'] == corner).all(1).any()


# ------------------------------------------------ inference odds and ends


def test_resize_feats_is_solos_resampling():
    head = build_head()
    torch.manual_seed(3)
    x = [torch.randn(1, 2, 32, 32), torch.randn(1, 2, 16, 16),
         torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4),
         torch.randn(1, 2, 2, 2)]
    out = head.resize_feats(x)
    torch.testing.assert_close(
        out[0], F.interpolate(x[0], scale_factor=0.5, mode='bilinear'))
    torch.testing.assert_close(
        out[4], F.interpolate(x[4], size=(4, 4), mode='bilinear'))
    assert all(out[i] is x[i] for i in (1, 2, 3))


def test_resize_masks_matches_bilinear_without_corner_alignment():
    head = build_head()
    torch.manual_seed(4)
    probs = torch.rand(2, 16, 16)
    meta = dict(img_meta(), img_shape=(50, 60), ori_shape=(100, 120))
    ref = F.interpolate(probs[None], size=(64, 64), mode='bilinear',
                        align_corners=False)[:, :, :50, :60]
    ref = F.interpolate(ref, size=(100, 120), mode='bilinear',
                        align_corners=False)[0] > 0.5
    assert torch.equal(head._resize_masks(probs, meta, True, 0.5), ref)


def test_rescale_defaults_to_ori_shape():
    head = build_head(excavator=None, purifier=None)
    meta = dict(img_meta(), ori_shape=(128, 128))
    scores, desc, strides = single_image_inputs(head, TWO_OVERLAPPING)
    with torch.no_grad():
        res = head._predict_by_feat_single(scores, desc, region_feats(), None,
                                           head._cell_xy(), strides, meta)
        empty = head._predict_by_feat_single(scores * 0, desc, region_feats(),
                                             None, head._cell_xy(), strides,
                                             meta)
        cls = [torch.zeros(1, 4, s, s) for s in GRIDS]
        by_feat, = head.predict_by_feat(
            [torch.zeros(1, 16, s, s) for s in GRIDS], cls,
            region_feats()[None], None, batch_img_metas=[meta])
    assert res.masks.shape[1:] == empty.masks.shape[1:] == (128, 128)
    assert by_feat.masks.shape[1:] == (128, 128)


def test_original_needs_a_score_above_score_thr():
    head = build_head(excavator=None, purifier=None)
    cells = [(flat(0, 1, 1), 0, 0.25, 'A')]
    assert len(predict_single(head, cells, score_thr=0.25)) == 0
    assert len(predict_single(head, cells, score_thr=0.2499)) == 1


def test_node_mask_and_maskness_need_probabilities_above_mask_thr():
    head = build_head(excavator=None, purifier=None)
    # Channel 0 is +6 on region A and 0 (probability exactly 0.5) elsewhere:
    # the mask is A alone and the maskness sigmoid(6).
    feats = torch.zeros(16, 16, 16)
    feats[0, 2:6, 2:6] = 6.
    scores, desc, strides = single_image_inputs(head, [(flat(0, 1, 1), 0,
                                                        0.9, 'A')])
    with torch.no_grad():
        res = head._predict_by_feat_single(scores, desc, feats, None,
                                           head._cell_xy(), strides,
                                           img_meta())
    assert res.scores.item() == pytest.approx(
        0.9 * torch.sigmoid(torch.tensor(6.)).item(), rel=1e-5)


def test_point_nms_keeps_every_class():
    head = build_head(excavator=None, purifier=None)
    cls = [torch.zeros(1, NUM_CLASSES + 1, s, s) for s in GRIDS]
    for c in cls:
        c[:, -1] = 10.
    cls[0][0, 2, 3, 3], cls[0][0, -1, 3, 3] = 10., 0.  # the last class
    desc = [torch.zeros(1, 16, s, s) for s in GRIDS]
    desc[0][0, :, 3, 3] = onehot('A')
    with torch.no_grad():
        res, = head.predict_by_feat(desc, cls, region_feats()[None], None,
                                    batch_img_metas=[img_meta()])
    assert res.labels.tolist() == [2]


def test_matrix_nms_sees_at_most_nms_pre_nodes_with_mined_ones():
    head = build_head(purifier=None)
    spy_excavator_predict(head, scores=[0.95, 0., 0.])
    # One original (A) and one mined node (C); nms_pre = 1 lets only the
    # best (the mined one, 0.95) through Matrix NMS.
    res = predict_single(head, [(flat(0, 1, 1), 1, 0.9, 'A')],
                         exc_feat=torch.zeros(8, 8, 8), nms_pre=1)
    assert res.labels.tolist() == [0]
    assert res.bboxes.tolist() == [region_box('C')]


def test_init_layers_first_tower_conv_takes_the_fpn_channels():
    head = build_head(feat_channels=8, norm_cfg=None)
    assert [c.conv.in_channels for c in head.cls_convs] == [16, 8]
    assert [c.conv.in_channels for c in head.desc_convs] == [18, 8]


def test_excavate_losses_of_a_lone_object_and_a_single_key():
    # One original whose instance has no neighbour: its map has no
    # positive, so L_E is the map's sum over 0 positives + 1 map.
    exc = tiny_excavator(num_neg_keys=0)
    c = -2.
    exc.excavate_maps = lambda feat, desc, xy: torch.full((1, 8, 8), c)
    boxes = torch.tensor([[8., 8, 24, 24]])
    losses, _ = exc.loss(
        torch.zeros(1, 4, 8, 8),
        [dict(descriptors=torch.randn(1, 8), xy=torch.zeros(1, 2),
              gt_inds=torch.tensor([0]))],
        [dict(boxes=boxes, centers=torch.tensor([[16., 16.]]),
              labels=torch.tensor([0]))], (64, 64))
    assert losses['loss_excavate'].item() == pytest.approx(
        64 * focal_terms(c)[1], rel=1e-5)
    # One original with one neighbour and no negative key: L_PE is the
    # single key's CE, not halved.
    exc = tiny_excavator(num_neg_keys=0)
    calls = []
    mine = exc.mine
    exc.mine = lambda d, o, k, **kw: calls.append(mine(d, o, k, **kw)) or calls[-1]
    losses, _ = excavate_one(exc, torch.randn(1, 8), torch.zeros(1, 2),
                             torch.tensor([0]), torch.tensor([1, 1]))
    expected = F.cross_entropy(calls[0][1], torch.tensor([1]))
    torch.testing.assert_close(losses['loss_excavate_cls'], expected)


def test_excavate_losses_sum_over_the_images_of_a_batch():
    exc = tiny_excavator(num_neg_keys=0)
    boxes, centers = touching_pair()
    ori = dict(descriptors=torch.randn(2, 8), xy=torch.zeros(2, 2),
               gt_inds=torch.tensor([0, 1]))
    gt = dict(boxes=boxes, centers=centers, labels=torch.tensor([0, 0]))
    feats = torch.randn(2, 4, 8, 8)
    one, _ = exc.loss(feats[:1], [ori], [gt], (64, 64))
    two, _ = exc.loss(feats[:1].expand(2, -1, -1, -1), [ori, ori], [gt, gt],
                      (64, 64))
    # The same image twice: sums and counts double, the means stay.
    for key in one:
        torch.testing.assert_close(one[key], two[key])


def test_targets_on_a_non_square_input():
    exc = tiny_excavator(center_radius=0)
    # 64 x 128 (h x w) input, 8 x 16 map: the centre (48, 40) is in cell
    # (row int(40 / 64 * 8), col int(48 / 128 * 16)) = (5, 6).
    boxes = torch.tensor([[24., 32, 40, 48], [40., 32, 56, 48]])
    centers = torch.tensor([[32., 40.], [48., 40.]])
    heat, near = exc.get_targets(boxes, centers, torch.tensor([0]), (8, 16),
                                 (64, 128))
    assert near.tolist() == [[False, True]]
    assert heat[0].nonzero().tolist() == [[5, 6]]


def test_mined_keys_on_a_non_square_input():
    exc = tiny_excavator(center_radius=0, num_neg_keys=0)
    boxes = torch.tensor([[24., 32, 40, 48], [40., 32, 56, 48]])
    centers = torch.tensor([[32., 40.], [48., 40.]])
    _, (mined, ) = exc.loss(
        torch.zeros(1, 4, 8, 16),
        [dict(descriptors=torch.randn(1, 8), xy=torch.zeros(1, 2),
              gt_inds=torch.tensor([0]))],
        [dict(boxes=boxes, centers=centers, labels=torch.tensor([0, 0]))],
        (64, 128))
    # GT 1's centre cell on the 8 x 16 map: (row 5, col 6).
    assert mined['xy'].tolist() == [[6.5 / 16 * 2 - 1, 5.5 / 8 * 2 - 1]]


# ------------------------------------- relative coordinates of mined nodes

# Coordinate weights of (rx, ry, rx^2, ry^2, rx * ry), all different, so
# that a swapped channel, a sign or a unit error changes the mask.
REL_W = (0.5, -1., -2., -1.5, 1.)


def rel_coord_logits(key_x, key_y, unit=24.):
    """By hand: the coordinate part of a mask logit over the 16 x 16 B.
    Pixel j of B (stride 4) is centred at 4 j + 2 input pixels, and r is
    the offset from the key pixel (key_x, key_y), in input pixels, in units
    of ``unit``: a mined node counts as a cell of level 0, whose largest
    object size is 24 px."""
    centres = torch.arange(16.) * 4 + 2
    rx = ((centres - key_x) / unit)[None, :].expand(16, 16)
    ry = ((centres - key_y) / unit)[:, None].expand(16, 16)
    return sum(w * t for w, t in zip(REL_W, (rx, ry, rx**2, ry**2, rx * ry)))


def fixed_rel_descriptor(b_part):
    """A 21-channel descriptor: ``b_part`` over B, then REL_W."""
    return torch.cat([b_part, torch.tensor(REL_W)])


@pytest.mark.parametrize('detach', [False, True])
def test_mined_rel_coords_in_training_by_hand(detach):
    """The mined rows of the mask loss with ``rel_coords='quadratic'``:
    offsets from the key pixel (the centre of the excavation-map cell of
    the other square's centre of mass), in units of level 0's 24 px. A
    change of unit (normalised offsets, map cells, another level's size)
    or of position (the original's cell instead of the key) fails."""
    head = build_head(
        purifier=None, rel_coords='quadratic', detach_excavation=detach)
    head.loss_mask = Recorder()
    mine = head.excavator.mine

    def mine_fixed(desc, ori_xy, key_xy):
        # Mined descriptors that ignore B and weigh the coordinates REL_W.
        mined, cls_logits = mine(desc, ori_xy, key_xy)
        fixed = fixed_rel_descriptor(torch.zeros(16))
        return fixed.expand(mined.size(0), -1), cls_logits

    head.excavator.mine = mine_fixed
    mined_out = []
    excavator_loss = head.excavator.loss

    def spy(*args, **kwargs):
        out = excavator_loss(*args, **kwargs)
        mined_out.append(out)
        return out

    head.excavator.loss = spy
    head.loss_by_feat(
        *head(fpn_feats()),
        batch_gt_instances=[two_squares()],
        batch_img_metas=[img_meta()])
    (_, (mined, )), = mined_out
    # Centres of mass (16, 16) and (32, 16) fall in cells (row 2, col 2)
    # and (row 2, col 4) of the 8 x 8 excavation map (stride 8), centred at
    # (20, 20) and (36, 20) px: normalised (-0.375, -0.375), (0.125, -0.375).
    keys_px = {0: (20., 20.), 1: (36., 20.)}
    assert sorted(mined['gt_inds'].tolist()) == [0, 0, 1, 1]
    for g, xy in zip(mined['gt_inds'].tolist(), mined['xy'].tolist()):
        assert xy == [keys_px[g][0] / 32 - 1, keys_px[g][1] / 32 - 1]
    # The mined rows come last: after the 11 originals' rows in the one
    # call of loss_mask, or as the second call (loss_mask_mined) detached.
    assert len(head.loss_mask.calls) == (2 if detach else 1)
    preds = head.loss_mask.calls[-1][0][-4:]
    assert head.loss_mask.calls[-1][0].shape[0] == (4 if detach else 15)
    for k, g in enumerate(mined['gt_inds'].tolist()):
        torch.testing.assert_close(preds[k], rel_coord_logits(*keys_px[g]))


def test_mined_rel_coords_at_inference_by_hand():
    """A mined node at inference (one original A, a key at map cell
    (row 2, col 5), centred at (44, 20) px): its mask logits are the
    region-C map of B plus the coordinate part from the key pixel in units
    of 24 px, and the node is kept as a detection of region C."""
    head = build_head(purifier=None, rel_coords='quadratic')
    logits = torch.full((8, 8), -10.)
    logits[2, 5] = 5.
    head.excavator.excavate_maps = (
        lambda feat, desc, xy: logits.expand(desc.size(0), 8, 8))
    cls_logits = torch.tensor([[-10., 10., -10., -10.]])
    head.excavator.mine = lambda desc, ori_xy, key_xy: (
        fixed_rel_descriptor(onehot('C')).expand(key_xy.size(0), -1),
        cls_logits.expand(key_xy.size(0), 4))
    scores, desc, strides = single_image_inputs(
        head, [(flat(0, 1, 1), 0, 0.9, 'A')])
    # The original has no coordinate weights: its mask is region A alone.
    desc = torch.cat([desc, torch.zeros(NUM_CELLS, 5)], 1)
    trace = {}
    cfg = {
        **head.test_cfg, 'excavate':
        dict(max_originals=10, key_thr=0.5, max_keys=4)
    }
    with torch.no_grad():
        res = head._predict_by_feat_single(scores, desc, region_feats(),
                                           torch.zeros(8, 8, 8),
                                           head._cell_xy(), strides,
                                           img_meta(), True, cfg, trace)
    assert trace['mine']['xy'].tolist() == [[44 / 32 - 1, 20 / 32 - 1]]
    nodes = trace['node_masks']
    assert nodes['mined'].tolist() == [False, True]
    region_c = region_feats()[list(REGIONS).index('C')]
    torch.testing.assert_close(nodes['mask_logits'][1],
                               region_c + rel_coord_logits(44, 20))
    # Inside C the coordinate part stays within (-1, 1), outside it is
    # negative enough: the mined detection is region C itself.
    assert sorted(res.labels.tolist()) == [0, 1]
    mined = res.labels.tolist().index(1)
    assert res.bboxes[mined].tolist() == region_box('C')
