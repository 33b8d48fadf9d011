"""Lovász hinge loss (Berman et al., "The Lovász-Softmax loss: A tractable
surrogate for the optimization of the intersection-over-union measure in
neural networks", CVPR 2018), binary and per instance.

Shape shorthand: N instances, P pixels of an instance (any trailing shape).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS


def lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at errors sorted
    in decreasing order.

    Args:
        gt_sorted (Tensor): Binary GT of the pixels in that order, (P,).

    Returns:
        Tensor: (P,); entry k is J(top k + 1) - J(top k) for the Jaccard
        loss J of the set of the k + 1 largest errors.
    """
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_hinge(logits: Tensor, labels: Tensor) -> Tensor:
    """Lovász hinge of each instance.

    Args:
        logits (Tensor): Scores in (-inf, inf), (N, P...); > 0 is
            foreground.
        labels (Tensor): Binary GT, (N, P...).

    Returns:
        Tensor: (N,), the Lovász extension of the Jaccard loss evaluated at
        the hinge errors ``max(0, 1 - logit * sign)``.
    """
    logits = logits.flatten(1)
    labels = labels.flatten(1).to(logits.dtype)
    losses = []
    for logit, label in zip(logits, labels):
        errors = 1 - logit * (2 * label - 1)
        errors_sorted, perm = errors.sort(descending=True)
        losses.append(F.relu(errors_sorted) @ lovasz_grad(label[perm]))
    if not losses:
        return logits.sum(1)
    return torch.stack(losses)


@MODELS.register_module()
class LovaszHingeLoss(nn.Module):
    """Binary Lovász hinge loss per instance, a convex surrogate of
    1 - IoU that EmbedMask and SpatialEmbeddings train their masks with.

    Args:
        input_type (str): ``'logits'`` (scores in (-inf, inf)) or
            ``'probs'`` (probabilities in [0, 1], mapped to ``2 p - 1``
            as SpatialEmbeddings does with its Gaussian).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over instances.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self,
                 input_type: str = 'logits',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if input_type not in ('logits', 'probs'):
            raise ValueError("input_type must be 'logits' or 'probs', got "
                             f'{input_type!r}')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError("reduction must be 'none', 'mean' or 'sum', got "
                             f'{reduction!r}')
        self.input_type = input_type
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of N instances.

        Args:
            pred (Tensor): (N, P...), logits or probabilities.
            target (Tensor): (N, P...), binary.
            weight (Tensor, optional): Weight of each instance, (N,).
            avg_factor (float, optional): Divisor of the summed loss.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The weighted loss; an exact zero connected to ``pred``
            without instances.
        """
        if pred.shape != target.shape:
            raise ValueError('pred and target must have the same shape, got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        reduction = reduction_override or self.reduction
        if pred.size(0) == 0:
            return pred.sum()  # no elements: an exact zero on the graph
        logits = pred * 2 - 1 if self.input_type == 'probs' else pred
        loss = lovasz_hinge(logits, target)
        loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
        return self.loss_weight * loss
