"""The Lovász hinge against a brute-force Lovász extension."""
import itertools

import pytest
import torch

from mmdet.registry import MODELS
from mmdet_pep.models.losses import lovasz_hinge


def jaccard_loss(gt, mistakes):
    """1 - IoU of the prediction that gets exactly ``mistakes`` wrong."""
    pred = [g != m for g, m in zip(gt, mistakes)]
    inter = sum(p and g for p, g in zip(pred, gt))
    union = sum(p or g for p, g in zip(pred, gt))
    return 1 - inter / union if union else 0.


def lovasz_extension(gt, errors):
    """Brute force: the integral over t >= 0 of the Jaccard loss of the set
    {i: error_i >= t}, for non-negative errors (piecewise constant)."""
    errors = [max(e, 0.) for e in errors]
    levels = sorted(set(errors) | {0.})
    total = 0.
    for lo, hi in zip(levels, levels[1:]):
        mistakes = [e >= hi for e in errors]
        total += (hi - lo) * jaccard_loss(gt, mistakes)
    return total


@pytest.mark.parametrize('gt', [
    (1, 0, 1, 1, 0), (0, 0, 0, 0, 0), (1, 1, 1, 1, 1), (0, 1, 0, 0, 1)
])
def test_matches_the_brute_force_extension(gt):
    torch.manual_seed(sum(gt))
    logits = torch.randn(3, 5, dtype=torch.float64) * 2
    labels = torch.tensor([gt] * 3, dtype=torch.float64)
    losses = lovasz_hinge(logits, labels)
    for logit, loss in zip(logits, losses):
        errors = [1 - x * (2 * g - 1) for x, g in zip(logit.tolist(), gt)]
        assert loss.item() == pytest.approx(lovasz_extension(gt, errors))


def test_perfect_margins_cost_nothing_and_all_wrong_costs_most():
    labels = torch.tensor([[1., 0., 1., 0.]])
    assert lovasz_hinge(torch.tensor([[2., -2., 3., -1.]]), labels) == 0
    # Every pixel wrong by a margin of 1: errors 2, Jaccard loss 1 -> 2.
    assert lovasz_hinge(torch.tensor([[-1., 1., -1., 1.]]),
                        labels).item() == pytest.approx(2.)


def test_module_reduction_weight_probs_and_empty():
    loss = MODELS.build(dict(type='LovaszHingeLoss', loss_weight=2.))
    logits = torch.randn(4, 3, 3, requires_grad=True)
    labels = (torch.rand(4, 3, 3) > 0.5).float()
    per_instance = lovasz_hinge(logits, labels)
    torch.testing.assert_close(loss(logits, labels), 2 * per_instance.mean())
    torch.testing.assert_close(
        loss(logits, labels, reduction_override='sum'),
        2 * per_instance.sum())
    weight = torch.tensor([1., 0., 0., 1.])
    torch.testing.assert_close(
        loss(logits, labels, weight=weight, avg_factor=2.),
        (per_instance[0] + per_instance[3]))
    loss(logits, labels).backward()
    assert logits.grad.abs().sum() > 0
    probs = MODELS.build(dict(type='LovaszHingeLoss', input_type='probs'))
    p = torch.rand(2, 5)
    y = (torch.rand(2, 5) > 0.5).float()
    torch.testing.assert_close(probs(p, y), lovasz_hinge(2 * p - 1, y).mean())
    empty = loss(torch.zeros(0, 3, 3, requires_grad=True), torch.zeros(0, 3, 3))
    assert empty.item() == 0 and empty.requires_grad


@pytest.mark.parametrize('kwargs,match', [(dict(input_type='sigmoid'),
                                           'input_type'),
                                          (dict(reduction='max'), 'reduction')])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='LovaszHingeLoss', **kwargs))


def test_shape_mismatch_is_named():
    loss = MODELS.build(dict(type='LovaszHingeLoss'))
    with pytest.raises(ValueError, match='same shape'):
        loss(torch.zeros(2, 4), torch.zeros(2, 5))


def test_gradient_matches_the_extension_numerically():
    # The extension is piecewise linear: away from ties its derivative is
    # the finite difference.
    gt = (1, 0, 1, 0, 1, 1)
    x = torch.tensor([0.3, -0.2, -0.9, 0.7, 1.4, 0.1], dtype=torch.float64,
                     requires_grad=True)
    lovasz_hinge(x[None], torch.tensor([gt], dtype=torch.float64)).backward()
    for i, eps in itertools.product(range(6), [1e-6]):
        shifted = x.detach().clone()
        shifted[i] += eps
        errs = lambda v: [1 - a * (2 * g - 1) for a, g in zip(v, gt)]  # noqa
        diff = (lovasz_extension(gt, errs(shifted.tolist())) -
                lovasz_extension(gt, errs(x.tolist()))) / eps
        assert x.grad[i].item() == pytest.approx(diff, abs=1e-4)


def test_no_instances_and_bool_or_integer_labels():
    assert lovasz_hinge(torch.zeros(0, 5), torch.zeros(0, 5)).shape == (0, )
    logits = torch.randn(2, 6)
    labels = torch.rand(2, 6) > 0.5
    expected = lovasz_hinge(logits, labels.float())
    torch.testing.assert_close(lovasz_hinge(logits, labels), expected)
    torch.testing.assert_close(lovasz_hinge(logits, labels.long()), expected)


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_every_reduction_is_accepted(reduction):
    loss = MODELS.build(dict(type='LovaszHingeLoss', reduction=reduction))
    out = loss(torch.randn(3, 4), torch.ones(3, 4))
    assert out.shape == ((3, ) if reduction == 'none' else ())
