"""SpatialEmbLoss against hand-derived values and a pixel-by-pixel
re-implementation of the official formulas (src/criterions/my_loss.py as
described in the research notes)."""
import math

import pytest
import torch

from mmdet.registry import MODELS
from mmdet_pep.models.losses import instance_gaussians, lovasz_hinge


def build(**kwargs):
    return MODELS.build(dict(type='SpatialEmbLoss', **kwargs))


def grid(h, w, unit=1.):
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64),
        torch.arange(w, dtype=torch.float64),
        indexing='ij')
    return torch.stack([xs, ys]) / unit


def reference(emb, sigma, seed, masks, labels, coords, fg_weight=(10., ),
              w=(1., 10., 1.), per_class=False):
    """One image, loops over instances and pixels; returns the three
    weighted terms (not yet divided by the batch size). ``per_class``: the
    literal loop over classes, each class's instance and smoothness terms
    averaged over its own instances, then summed."""
    _, h, wd = emb.shape
    inst = var = seed_loss = 0.
    for c in range(seed.shape[0]):
        for y in range(h):
            for x in range(wd):
                if not any(m[y, x] and lab == c
                           for m, lab in zip(masks, labels)):
                    seed_loss += seed[c, y, x].item()**2
    labels = [int(lab) for lab in labels]
    for m, lab in zip(masks, labels):
        # The divisor of this instance's terms.
        n = labels.count(lab) if per_class else len(masks)
        pix = [(y, x) for y in range(h) for x in range(wd) if m[y, x]]
        cx = sum(coords[0, y, x].item() for y, x in pix) / len(pix)
        cy = sum(coords[1, y, x].item() for y, x in pix) / len(pix)
        s_mean = [
            sum(sigma[k, y, x].item() for y, x in pix) / len(pix)
            for k in range(sigma.shape[0])
        ]
        s = [math.exp(10 * v) for v in s_mean]
        if len(s) == 1:
            s = s * 2
        phi = torch.zeros(h, wd, dtype=torch.float64)
        for y in range(h):
            for x in range(wd):
                d = (s[0] * (emb[0, y, x].item() - cx)**2 +
                     s[1] * (emb[1, y, x].item() - cy)**2)
                phi[y, x] = math.exp(-d)
        inst += lovasz_hinge((2 * phi - 1)[None],
                             m[None].double()).item() / n
        var += sum((sigma[k, y, x].item() - s_mean[k])**2 for y, x in pix
                   for k in range(sigma.shape[0])) / (len(pix) *
                                                      sigma.shape[0]) / n
        seed_loss += fg_weight[lab] * sum(
            (seed[lab, y, x].item() - phi[y, x].item())**2 for y, x in pix)
    return (w[0] * inst, w[1] * var, w[2] * seed_loss / (h * wd))


@pytest.mark.parametrize('per_class', [False, True])
@pytest.mark.parametrize('n_sigma', [1, 2])
def test_matches_the_official_formulas_pixel_by_pixel(n_sigma, per_class):
    torch.manual_seed(n_sigma)
    h, w = 6, 7
    coords = grid(h, w, unit=8.)
    masks = [torch.zeros(h, w, dtype=torch.bool) for _ in range(3)]
    masks[0][1:4, 1:3] = True
    masks[1][2:5, 3:6] = True  # touches the first, same class
    masks[2][0, 5:] = True  # another class
    labels = torch.tensor([0, 0, 1])
    emb = coords + torch.randn(2, h, w, dtype=torch.float64) * 0.1
    sigma = torch.randn(n_sigma, h, w, dtype=torch.float64) * 0.1 + 0.3
    seed = torch.rand(2, h, w, dtype=torch.float64)
    loss = build(num_classes=2, foreground_weight=[10., 3.],
                 average_per_class=per_class)
    out = loss(emb[None], sigma[None], seed[None], [torch.stack(masks)],
               [labels], coords)
    inst, var, seed_loss = reference(emb, sigma, seed, masks, labels, coords,
                                     fg_weight=(10., 3.), per_class=per_class)
    assert out['loss_inst'].item() == pytest.approx(inst, rel=1e-9)
    assert out['loss_var'].item() == pytest.approx(var, rel=1e-9)
    assert out['loss_seed'].item() == pytest.approx(seed_loss, rel=1e-9)


def test_perfect_embeddings_seeds_and_sigmas_cost_nothing():
    """Every pixel of the instance embedded at its centroid, the background
    far away, constant sigma, seeds = the Gaussian: the hinge errors are 1 -
    (2 phi - 1) sign = 0, the variance 0 and the seed errors 0."""
    h, w = 5, 5
    coords = grid(h, w)
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[1:3, 1:4] = True
    centre = torch.tensor([2., 1.5], dtype=torch.float64)  # (x, y) centroid
    emb = torch.full((2, h, w), 100., dtype=torch.float64)
    emb[:, mask] = centre[:, None]
    sigma = torch.full((1, h, w), 0.5, dtype=torch.float64)
    seed = mask[None].double()
    out = build()(emb[None], sigma[None], seed[None], [mask[None]],
                  [torch.tensor([0])], coords)
    assert all(v.item() == pytest.approx(0., abs=1e-12) for v in out.values())


def test_images_without_instances_give_the_background_seed_term_only():
    """Two empty images, 2 classes, seeds 0.5 everywhere: per image
    sum 0.25 over 2 x P pixels / P = 0.5; averaged over the batch 0.5. The
    other terms are exact zeros that still reach every output."""
    emb = torch.zeros(2, 2, 3, 4, requires_grad=True)
    sigma = torch.zeros(2, 1, 3, 4, requires_grad=True)
    seed = torch.full((2, 2, 3, 4), 0.5, requires_grad=True)
    empty = [torch.zeros(0, 3, 4, dtype=torch.bool)] * 2
    labels = [torch.zeros(0, dtype=torch.long)] * 2
    out = build(num_classes=2, seed_weight=2.)(emb, sigma, seed, empty,
                                              labels, grid(3, 4).float())
    assert out['loss_seed'].item() == pytest.approx(2 * 0.5)
    assert out['loss_inst'].item() == 0 and out['loss_var'].item() == 0
    sum(out.values()).backward()
    assert emb.grad is not None and sigma.grad is not None


def test_weights_and_batch_average():
    """The weights scale each term and the batch averages: an image paired
    with an empty one halves its instance and smoothness terms."""
    torch.manual_seed(0)
    coords = grid(4, 4, unit=4.).float()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    emb = coords + torch.randn(2, 4, 4) * 0.1
    sigma = torch.rand(1, 4, 4)
    seed = torch.rand(1, 4, 4)
    one = build()(emb[None], sigma[None], seed[None], [mask],
                  [torch.tensor([0])], coords)
    pair = build(instance_weight=3., var_weight=5.)(
        torch.stack([emb, emb]), torch.stack([sigma, sigma]),
        torch.stack([seed, seed]),
        [mask, torch.zeros(0, 4, 4, dtype=torch.bool)],
        [torch.tensor([0]), torch.zeros(0, dtype=torch.long)], coords)
    assert pair['loss_inst'].item() == pytest.approx(
        3 * one['loss_inst'].item() / 2)
    assert pair['loss_var'].item() == pytest.approx(
        5 / 10 * one['loss_var'].item() / 2)


def test_seed_target_is_detached_and_gaussians_are_eq_5():
    """The seed term does not train the embeddings (its target is the
    detached Gaussian); ``instance_gaussians`` is exp(-sum s (e - C)^2)."""
    e = torch.tensor([[0., 1., 3.], [0., 0., 2.]])
    phi = instance_gaussians(e, torch.tensor([[1., 0.]]),
                             torch.tensor([[2., 0.5]]))
    expected = [math.exp(-2.), 1., math.exp(-(2 * 4 + 0.5 * 4))]
    assert phi[0].tolist() == pytest.approx(expected)

    coords = grid(3, 3).float()
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    mask[0, 1, 1] = True
    emb = coords.clone().requires_grad_()
    seed = torch.full((1, 3, 3), 0.3, requires_grad=True)
    out = build(instance_weight=0., var_weight=0.)(
        emb[None], torch.zeros(1, 1, 3, 3), seed[None], [mask],
        [torch.tensor([0])], coords)
    out['loss_seed'].backward()
    assert emb.grad is None or not emb.grad.any()
    assert seed.grad.abs().sum() > 0


def test_foreground_weight_per_class_must_match_the_classes():
    with pytest.raises(ValueError, match='one per class'):
        build(num_classes=3, foreground_weight=[1., 2.])


def test_average_per_class_weighs_each_class_as_one_instance_set():
    """Two instances of class 0 and one of class 1: over all instances
    each weighs 1/3; per class, 1/2, 1/2 and 1 (the class terms add up)."""
    labels = torch.tensor([0, 0, 1])
    assert build(num_classes=2).instance_weights(labels).tolist() == \
        pytest.approx([1 / 3] * 3)
    assert build(num_classes=2, average_per_class=True).instance_weights(
        labels).tolist() == pytest.approx([0.5, 0.5, 1.])
    # One class only: both readings are the single-class loss.
    one = torch.tensor([0, 0])
    for per_class in (False, True):
        assert build(num_classes=2, average_per_class=per_class
                     ).instance_weights(one).tolist() == [0.5, 0.5]


def test_enet_class_weights():
    from mmdet_pep.models.losses import enet_class_weights
    got = enet_class_weights([0., 0.07, 1.])
    assert got == pytest.approx(
        [1 / math.log(1.02), 1 / math.log(1.09), 1 / math.log(2.02)])
    assert got[0] == pytest.approx(50.5, abs=0.05)
    assert 11 < got[1] < 12  # Cityscapes' cars: near the car model's 10
    with pytest.raises(ValueError, match='pixel fractions'):
        enet_class_weights([0.5, 1.5])
    with pytest.raises(ValueError, match='c must be'):
        enet_class_weights([0.1], c=1.)
