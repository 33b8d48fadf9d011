import pytest
import torch

from mmdet_pep.models import PEPPurifier


def two_instances():
    """Four noisy copies each of two clearly separate descriptors."""
    torch.manual_seed(0)
    base = torch.eye(8)[:2] * 3
    desc = torch.cat([base[0] + 0.05 * torch.randn(4, 8),
                      base[1] + 0.05 * torch.randn(4, 8)])
    xy = torch.cat([torch.full((4, 2), -0.5), torch.full((4, 2), 0.5)])
    gt = torch.tensor([0] * 4 + [1] * 4)
    return base, desc, xy, gt


def graph_loss(purifier, desc, xy, gt):
    return purifier.loss([desc], [xy], [gt])['loss_graph']


def fit(purifier, desc, xy, gt, steps=60):
    opt = torch.optim.Adam(purifier.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = graph_loss(purifier, desc, xy, gt)
        opt.zero_grad()
        loss.backward()
        opt.step()


def trained_purifier(merge='mean'):
    """A purifier fitted for a few steps on two clearly separate instances."""
    base, desc, xy, gt = two_instances()
    purifier = PEPPurifier(in_channels=8, embed_channels=16, merge=merge)
    fit(purifier, desc, xy, gt)
    return purifier, base


def grouped(purifier, desc, xy, scores, labels, **kwargs):
    """Leaders and merge weights of one image's grouping."""
    leaders, members = purifier.group(desc, xy, scores, labels, **kwargs)
    return leaders, purifier.merge_weights(leaders, members, scores)


def test_loss_decreases():
    purifier = PEPPurifier(in_channels=8, embed_channels=16)
    _, desc, xy, gt = two_instances()
    before = graph_loss(purifier, desc, xy, gt)
    fit(purifier, desc, xy, gt)
    after = graph_loss(purifier, desc, xy, gt)
    assert after.item() < 0.2 * before.item()


def test_near_identical_merge_orthogonal_do_not():
    purifier, base = trained_purifier()
    desc = torch.stack([base[0], base[0] + 1e-3, base[1]])
    xy = torch.tensor([[-0.5, -0.5], [-0.5, -0.5], [0.5, 0.5]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    leaders, weights = grouped(purifier, desc, xy, scores, torch.zeros(3),
                               group_thr=0.5)
    assert leaders.tolist() == [0, 2]
    assert weights[0, :2].gt(0).all() and weights[0, 2] == 0
    assert weights[1].tolist() == [0, 0, 1]
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    # Score-weighted mean.
    torch.testing.assert_close(weights[0, :2], scores[:2] / scores[:2].sum())


def test_best_merge_keeps_leader_only():
    purifier, base = trained_purifier(merge='best')
    desc = torch.stack([base[0], base[0] + 1e-3])
    leaders, weights = grouped(
        purifier, desc, torch.full((2, 2), -0.5), torch.tensor([0.2, 0.9]),
        torch.zeros(2), group_thr=0.5)
    assert leaders.tolist() == [1] and weights.tolist() == [[0., 1.]]


def test_different_labels_stay_apart_unless_class_agnostic():
    purifier, base = trained_purifier()
    desc = torch.stack([base[0], base[0]])
    xy = torch.full((2, 2), -0.5)
    args = (desc, xy, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]))
    assert len(purifier.group(*args, group_thr=0.5)[0]) == 2
    assert len(purifier.group(*args, group_thr=0.5, class_agnostic=True)[0]) == 1


def test_empty_and_single_node():
    purifier = PEPPurifier(in_channels=8)
    leaders, members = purifier.group(
        torch.zeros(0, 8), torch.zeros(0, 2), torch.zeros(0),
        torch.zeros(0), group_thr=0.5)
    assert leaders.numel() == 0 and members.shape == (0, 0)
    assert leaders.dtype == torch.long and members.dtype == torch.bool
    loss = graph_loss(purifier, torch.randn(1, 8), torch.zeros(1, 2),
                      torch.zeros(1, dtype=torch.long))
    assert loss.item() == 0


def test_sample_caps_nodes():
    purifier = PEPPurifier(in_channels=8, max_descriptors=30)
    assert purifier.sample(10, torch.device('cpu')).tolist() == list(range(10))
    idx = purifier.sample(100, torch.device('cpu'))
    assert idx.numel() == 30 and idx.unique().numel() == 30


@pytest.mark.parametrize('kwargs,match', [(dict(max_descriptors=1),
                                           'max_descriptors'),
                                          (dict(merge='vote'), 'merge')])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PEPPurifier(**kwargs)


def fixed(purifier, logits):
    purifier.forward = lambda desc, xy: logits
    return purifier


def test_link_needs_a_probability_above_group_thr():
    # sigmoid(0) = 0.5 exactly: not above group_thr 0.5.
    purifier = fixed(PEPPurifier(in_channels=4),
                     torch.tensor([[9., 0.], [0., 9.]]))
    leaders, _ = purifier.group(torch.zeros(2, 4), torch.zeros(2, 2),
                                torch.tensor([0.9, 0.8]), torch.zeros(2),
                                group_thr=0.5)
    assert leaders.tolist() == [0, 1]


def test_a_grouped_descriptor_stays_with_its_first_leader():
    # Scores put node 0 first, then 2, then 1. Node 0 links node 1; node 2
    # (not linked to 0) opens its own group and also links node 1, which
    # must stay with node 0.
    logits = torch.tensor([[9., 9., -9.], [9., 9., 9.], [-9., 9., 9.]])
    purifier = fixed(PEPPurifier(in_channels=4, merge='best'), logits)
    leaders, members = purifier.group(torch.zeros(3, 4), torch.zeros(3, 2),
                                      torch.tensor([0.9, 0.5, 0.8]),
                                      torch.zeros(3), group_thr=0.5)
    assert leaders.tolist() == [0, 2]
    assert members.tolist() == [[True, True, False], [False, False, True]]
    weights = purifier.merge_weights(leaders, members,
                                     torch.tensor([0.9, 0.5, 0.8]))
    assert weights.tolist() == [[1., 0., 0.], [0., 0., 1.]]
    mean = fixed(PEPPurifier(in_channels=4), logits)
    _, weights = grouped(mean, torch.zeros(3, 4), torch.zeros(3, 2),
                         torch.tensor([0.9, 0.5, 0.8]), torch.zeros(3),
                         group_thr=0.5)
    torch.testing.assert_close(
        weights, torch.tensor([[0.9 / 1.4, 0.5 / 1.4, 0.], [0., 0., 1.]]))


def test_sample_keeps_all_nodes_in_order_up_to_the_cap():
    purifier = PEPPurifier(in_channels=8, max_descriptors=30)
    assert purifier.sample(30, torch.device('cpu')).tolist() == list(
        range(30))


def test_init_cfg_reaches_the_module():
    purifier = PEPPurifier(
        in_channels=4, init_cfg=dict(type='Constant', layer='Linear',
                                     val=0.5, bias=0.))
    purifier.init_weights()
    assert (purifier.project[0].weight == 0.5).all()
