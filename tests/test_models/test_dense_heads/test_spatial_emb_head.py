"""SpatialEmbHead: the official output init, the embedding grid, the
greedy clustering against a transcription of the official loop, losses
and predictions on empty, single and crowded GT, non-finite maps."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet_pep.models.dense_heads import greedy_cluster


def official_cluster(emb, bandwidth, seeds, seed_thr, min_pixels):
    """The official ``Cluster.cluster`` loop on the foreground pixels:
    argmax of the seed over unclustered pixels, its Gaussian > 0.5, accept
    above ``min_pixels`` with more than half unclustered."""
    unclustered = torch.ones(len(seeds), dtype=torch.bool)
    masks, scores = [], []
    while unclustered.sum() > min_pixels:
        masked = seeds * unclustered.float()
        centre = int(masked.argmax())
        if masked[centre] < seed_thr:
            break
        unclustered[centre] = False
        s = bandwidth[:, centre:centre + 1]
        dist = torch.exp(
            -((emb - emb[:, centre:centre + 1])**2 * s).sum(0))
        proposal = dist > 0.5
        if proposal.sum() > min_pixels:
            if (unclustered[proposal].sum().float() / proposal.sum().float()
                    > 0.5):
                masks.append(proposal)
                scores.append(seeds[centre])
        unclustered[proposal] = False
    return masks, scores


def blobs(num_pixels, num_blobs, spread, seed):
    """Embeddings around ``num_blobs`` centres with some noise pixels,
    bandwidths and seeds with ties."""
    g = torch.Generator().manual_seed(seed)
    owner = torch.randint(num_blobs, (num_pixels, ), generator=g)
    centres = torch.rand(num_blobs, 2, generator=g) * 0.2
    emb = centres[owner].t() + torch.randn(2, num_pixels, generator=g) * spread
    bandwidth = torch.exp(10 * (0.8 + 0.05 * torch.randn(
        1, num_pixels, generator=g)))
    seeds = (torch.rand(num_pixels, generator=g) * 10).round() / 10
    return emb, bandwidth, seeds


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('min_pixels', [0, 5, 40])
def test_greedy_cluster_is_the_official_loop(seed, min_pixels):
    emb, bandwidth, seeds = blobs(600, 5, 0.004 * (1 + seed % 3), seed)
    masks, scores = greedy_cluster(emb, bandwidth, seeds, 0.5, 0.5,
                                   min_pixels, 0.5)
    ref_masks, ref_scores = official_cluster(emb, bandwidth, seeds, 0.5,
                                             min_pixels)
    assert len(masks) == len(ref_masks)
    for mask, ref in zip(masks, ref_masks):
        assert torch.equal(mask, ref)
    assert scores.tolist() == [float(s) for s in ref_scores]


def test_greedy_cluster_chunks_do_not_change_the_result(monkeypatch):
    """A chunk of one centre is the plain sequential loop."""
    import mmdet_pep.models.dense_heads.spatial_emb_head as module
    emb, bandwidth, seeds = blobs(400, 6, 0.006, 7)
    masks, scores = greedy_cluster(emb, bandwidth, seeds, 0.3, 0.5, 3, 0.5)
    monkeypatch.setattr(module, 'CLUSTER_CHUNK_ELEMENTS', 1)
    masks1, scores1 = greedy_cluster(emb, bandwidth, seeds, 0.3, 0.5, 3, 0.5)
    assert torch.equal(masks, masks1) and torch.equal(scores, scores1)
    assert len(masks) >= 3


def test_greedy_cluster_by_hand():
    """Two tight groups of 4 pixels at x = 0 and x = 1, one stray pixel:
    bandwidth e^1 puts the other group at exp(-e) < 0.5; the stray seed
    (0.95) is the first centre but its proposal (itself) is too small;
    then the two groups in seed order; max_centres 2 stops after the
    stray and the first group."""
    emb = torch.tensor([[0., 0., 0., 0., 1., 1., 1., 1., 5.],
                        [0.] * 9])
    bandwidth = torch.full((1, 9), math.e)
    seeds = torch.tensor([.6, .7, .8, .6, .9, .6, .6, .6, .95])
    masks, scores = greedy_cluster(emb, bandwidth, seeds, 0.5, 0.5, 1, 0.5)
    assert masks.tolist() == [[False] * 4 + [True] * 4 + [False],
                              [True] * 4 + [False] * 5]
    assert scores.tolist() == pytest.approx([.9, .8])
    masks, _ = greedy_cluster(emb, bandwidth, seeds, 0.5, 0.5, 1, 0.5,
                              max_centres=2)
    assert len(masks) == 1
    # No centre above seed_thr, or too few pixels: nothing.
    assert len(greedy_cluster(emb, bandwidth, seeds, 0.99, 0.5, 1, 0.5)[0]
               ) == 0
    assert len(greedy_cluster(emb, bandwidth, seeds, 0.5, 0.5, 9, 0.5)[0]
               ) == 0


def head_cfg(**kwargs):
    return dict(
        type='SpatialEmbHead',
        num_classes=2,
        in_channels=16,
        decoder_channels=(8, 4),
        test_cfg=dict(min_pixels=2, seed_thr=0.5),
        **kwargs)


def build_head(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


def test_official_output_init_and_grid():
    head = build_head(n_sigma=2, grid_unit=4.)
    emb, seeds = head((torch.randn(1, 16, 3, 5), ))
    assert emb.shape == (1, 4, 24, 40) and seeds.shape == (1, 2, 24, 40)
    assert torch.all(emb[:, :2] == 0) and torch.all(emb[:, 2:] == 1)
    embeddings, sigma = head.decode(emb)
    # tanh(0) + (x, y) / grid_unit.
    assert embeddings[0, :, 5, 7].tolist() == [7 / 4, 5 / 4]
    assert sigma.shape == (1, 2, 24, 40)
    with pytest.raises(ValueError, match='n_sigma'):
        MODELS.build(head_cfg(n_sigma=3))
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(
            head_cfg(loss_mask=dict(type='SpatialEmbLoss', num_classes=3)))


def gt(masks, labels):
    inst = InstanceData()
    inst.masks = BitmapMasks(masks.numpy(), *masks.shape[-2:])
    inst.labels = torch.tensor(labels)
    return inst


@pytest.mark.parametrize('case', ['empty', 'one', 'crowded'])
def test_losses_are_finite_and_reach_every_parameter(case):
    head = build_head()
    h = w = 32
    masks = torch.zeros(3, h, w, dtype=torch.bool)
    masks[0, 4:12, 4:12] = True
    masks[1, 4:12, 12:20] = True  # touches the first, same class
    masks[2, 20:28, 3:30] = True
    counts = dict(empty=0, one=1, crowded=3)[case]
    gts = [gt(masks[:counts], [0, 0, 1][:counts]), gt(masks[:0], [])]
    outs = head((torch.randn(2, 16, 4, 4), ))
    losses = head.loss_by_feat(*outs, batch_gt_instances=gts,
                               batch_img_metas=[{}, {}])
    assert set(losses) == {'loss_inst', 'loss_var', 'loss_seed'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in head.parameters())
    if case == 'empty':
        assert losses['loss_inst'] == 0 and losses['loss_var'] == 0


def test_gt_masks_are_cropped_or_padded_to_the_output():
    """GT masks of 30 x 36 px against a 32 x 32 map: cropped on the right,
    zero-padded at the bottom; a mask cropped away is dropped."""
    head = build_head()
    masks = torch.zeros(2, 30, 36, dtype=torch.bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 2:6, 33:] = True  # outside the map
    calls = []
    head.loss_mask.forward = lambda *args: calls.append(args) or {}
    head.loss_by_feat(*head((torch.randn(1, 16, 4, 4), )),
                      batch_gt_instances=[gt(masks, [0, 1])],
                      batch_img_metas=[{}])
    (gt_masks, ), (labels, ) = calls[0][3], calls[0][4]
    assert gt_masks.shape == (1, 32, 32) and gt_masks.sum() == 16
    assert labels.tolist() == [0]


def meta(img_shape=(29, 27), ori_shape=(58, 54)):
    return dict(img_shape=img_shape, ori_shape=ori_shape)


def confident_outputs(head):
    """Outputs with two clean instances of class 1: offsets that pull the
    pixels of each half to one point and confident seeds on them."""
    emb = torch.zeros(1, 3, 32, 32)
    emb[:, 2] = 0.4  # bandwidth e^4 ~ 55
    # tanh^-1 of (target - x / grid_unit): the left half at x = 0.2, the
    # right half at x = 0.6 (y unchanged at rows 8..15).
    xs = torch.arange(32.) / head.grid_unit
    emb[0, 0, :, :16] = torch.atanh(0.2 - xs[:16])
    emb[0, 0, :, 16:] = torch.atanh(0.6 - xs[16:])
    emb[0, 1] = torch.atanh(0.5 - torch.arange(32.)[:, None] /
                            head.grid_unit)
    seeds = torch.full((1, 2, 32, 32), -10.)
    seeds[0, 1, 8:16, 2:10] = 5.
    seeds[0, 1, 8:16, 18:26] = 4.
    return emb, seeds


def test_predicts_clusters_at_ori_shape_with_real_boxes():
    head = build_head(grid_unit=64.)
    emb, seeds = confident_outputs(head)
    res = head.predict_by_feat(emb, seeds, [meta()], rescale=True)[0]
    assert res.masks.shape == (2, 58, 54) and res.masks.dtype == torch.bool
    assert res.labels.tolist() == [1, 1]
    assert res.scores.tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(5.)).item(),
         torch.sigmoid(torch.tensor(4.)).item()])
    # Instance 1: rows 8..15, columns 2..9 at the input -> x2 at ori_shape;
    # instance 2: columns 18..25 cut at img_shape's 27 columns.
    assert res.bboxes.tolist() == [[4., 16., 20., 32.], [36., 16., 52., 32.]]
    unscaled = head.predict_by_feat(emb, seeds, [meta()], rescale=False)[0]
    assert unscaled.masks.shape == (2, 29, 27)
    assert unscaled.bboxes.tolist() == [[2., 8., 10., 16.],
                                        [18., 8., 26., 16.]]


def check_empty(res, shape):
    assert len(res) == 0
    assert res.masks.shape == (0, *shape) and res.masks.dtype == torch.bool
    assert res.scores.shape == (0, ) and res.labels.dtype == torch.long
    assert res.bboxes.shape == (0, 4)


def test_nothing_above_threshold_gives_an_empty_well_typed_result():
    head = build_head()
    emb, seeds = confident_outputs(head)
    res = head.predict_by_feat(emb, seeds - 20, [meta()], rescale=True)[0]
    check_empty(res, (58, 54))


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_maps_give_no_detections(value):
    head = build_head(grid_unit=64.)
    emb, seeds = confident_outputs(head)
    res = head.predict_by_feat(
        torch.full_like(emb, value), seeds, [meta()], rescale=True)[0]
    check_empty(res, (58, 54))
    res = head.predict_by_feat(
        emb, torch.full_like(seeds, value), [meta()], rescale=True)[0]
    if value != value:  # NaN seeds: no foreground
        check_empty(res, (58, 54))
    # Non-finite features through the decoders: nothing either.
    feats = torch.full((1, 16, 4, 4), value)
    res = head.predict_by_feat(*head((feats, )), [meta()], rescale=True)[0]
    check_empty(res, (58, 54))
