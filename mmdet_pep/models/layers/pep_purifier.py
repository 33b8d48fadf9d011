"""Instance purifying of PEP (§3.4, Eq. 5, Fig. 4).

Shape shorthand: B images, N descriptors of one image, D descriptor
channels, G groups (final instances).
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..utils import zero_loss


@MODELS.register_module()
class PEPPurifier(BaseModule):
    """Instance purifying graph of `Perceive, Excavate and Purify: A Novel
    Object Mining Framework for Instance Segmentation
    <https://arxiv.org/abs/2304.08826>`_ (§3.4, Fig. 4).

    All descriptors of an image (original and mined) are the nodes of a
    graph whose N x N adjacency ``M`` is the pairwise similarity of learned
    projections. ``M`` is trained with binary cross-entropy against ``G_M``
    (1 iff two descriptors belong to the same GT instance, Eq. 5); the
    diagonal is trivially 1 and left out. The gradient flows back into the
    descriptors, which pulls descriptors of one instance together and
    pushes different instances apart.

    The projection sees the descriptor and its normalised location: two
    adjacent objects of one class can look alike, their positions never
    coincide.

    At inference descriptors are grouped greedily by score (the paper only
    says that close instances are merged): the best ungrouped descriptor
    opens a group and takes every ungrouped descriptor whose similarity to
    it exceeds ``group_thr``. Each group becomes one instance.
    ``merge='mean'`` (default) takes the score-weighted mean of the
    members' descriptors, which, because mask learning is a linear 1x1
    dynamic convolution, is the score-weighted mean of their mask logits
    (an ensemble of the members' masks); ``merge='best'`` keeps the
    leader's own mask, the NMS-like reading, for members whose masks are
    too poor to average.

    Args:
        in_channels (int): Descriptor channels D.
        embed_channels (int): Channels of the similarity projection.
        max_descriptors (int): Nodes sampled per image in training (the
            paper keeps N_all <= 30).
        merge (str): ``'mean'`` or ``'best'``, see above.
        loss_graph (dict): Loss of the adjacency matrix (Eq. 5).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 embed_channels: int = 128,
                 max_descriptors: int = 30,
                 merge: str = 'mean',
                 loss_graph: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        if max_descriptors < 2:
            raise ValueError('max_descriptors must be >= 2 (a graph needs two '
                             f'nodes), got {max_descriptors}')
        if min(in_channels, embed_channels) < 1:
            raise ValueError('in_channels and embed_channels must be >= 1, '
                             f'got {in_channels} and {embed_channels}')
        if merge not in ('mean', 'best'):
            raise ValueError(f"merge must be 'mean' or 'best', got {merge!r}")
        self.max_descriptors = max_descriptors
        self.merge = merge
        self.project = nn.Sequential(
            nn.Linear(in_channels + 2, embed_channels), nn.ReLU(True),
            nn.Linear(embed_channels, embed_channels))
        # Cosine similarity lies in [-1, 1]; a learned scale and bias turn it
        # into a logit that can reach confident 0/1 probabilities.
        self.logit_scale = nn.Parameter(torch.tensor(10.0))
        self.logit_bias = nn.Parameter(torch.tensor(-5.0))
        self.loss_graph = MODELS.build(loss_graph)

    def forward(self, descriptors: Tensor, xy: Tensor) -> Tensor:
        """Similarity logits between all pairs of descriptors.

        Args:
            descriptors (Tensor): Shape (N, D).
            xy (Tensor): Normalised locations, shape (N, 2).

        Returns:
            Tensor: Symmetric logits of shape (N, N).
        """
        emb = F.normalize(self.project(torch.cat([descriptors, xy], 1)), dim=1)
        return emb @ emb.t() * self.logit_scale + self.logit_bias

    def loss(self, batch_descriptors: List[Tensor], batch_xy: List[Tensor],
             batch_gt_inds: List[Tensor]) -> Dict[str, Tensor]:
        """Graph loss of a batch (Eq. 5): ``loss_graph`` averaged over all
        node pairs of the batch.

        At most ``max_descriptors`` nodes of each image, sampled at random,
        enter its graph (the paper's N_all <= 30).

        Args:
            batch_descriptors (list[Tensor]): Per image, all descriptors
                (originals and mined), each (N, D).
            batch_xy (list[Tensor]): Their normalised locations, (N, 2).
            batch_gt_inds (list[Tensor]): Their GT instances, (N,).

        Returns:
            dict[str, Tensor]: The finished, weighted ``loss_graph``.
        """
        loss_sum, num_pairs = 0., 0
        for desc, xy, gt_inds in zip(batch_descriptors, batch_xy,
                                     batch_gt_inds):
            keep = self.sample(desc.size(0), desc.device)
            loss, pairs = self._pair_loss(desc[keep], xy[keep], gt_inds[keep])
            loss_sum, num_pairs = loss_sum + loss, num_pairs + pairs
        # Images with fewer than two nodes add an exact zero that still
        # touches every parameter, so the graph (and DDP) stays whole.
        zero = zero_loss(self, batch_descriptors[0])
        return dict(loss_graph=zero + loss_sum / max(num_pairs, 1))

    def _pair_loss(self, descriptors: Tensor, xy: Tensor,
                   gt_inds: Tensor) -> Tuple[Tensor, int]:
        """Graph loss of one image summed over its node pairs.

        Args:
            descriptors (Tensor): Shape (N, D).
            xy (Tensor): Shape (N, 2).
            gt_inds (Tensor): GT instance of each node, shape (N,).

        Returns:
            tuple[Tensor | float, int]: Summed loss and the number of
            pairs (0. and 0 for fewer than two nodes).
        """
        n = descriptors.size(0)
        if n < 2:
            return 0., 0
        logits = self(descriptors, xy)
        same = gt_inds[:, None] == gt_inds[None, :]
        off_diag = ~torch.eye(n, dtype=torch.bool, device=logits.device)
        # mmdet's BCE convention: label 0 is the (single) positive class.
        labels = (~same[off_diag]).long()
        loss = self.loss_graph(
            logits[off_diag][:, None], labels, reduction_override='sum')
        return loss, labels.numel()

    def sample(self, num: int, device: torch.device) -> Tensor:
        """Indices of at most ``max_descriptors`` of ``num`` nodes."""
        if num <= self.max_descriptors:
            return torch.arange(num, device=device)
        return torch.randperm(num, device=device)[:self.max_descriptors]

    def group(self, descriptors: Tensor, xy: Tensor, scores: Tensor,
              labels: Tensor, group_thr: float,
              class_agnostic: bool = False,
              allowed: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Greedily group the descriptors of one image.

        Args:
            descriptors (Tensor): Shape (N, D).
            xy (Tensor): Shape (N, 2).
            scores (Tensor): Shape (N,).
            labels (Tensor): Shape (N,).
            group_thr (float): Similarity probability above which a
                descriptor joins a group.
            class_agnostic (bool): Whether descriptors of different
                predicted classes may share a group.
            allowed (Tensor, optional): Pairs that may be linked at all,
                (N, N) bool, e.g. those whose masks overlap (PEPHead's
                ``test_cfg.purify.mask_iou_thr``); None: every pair.

        Returns:
            tuple[Tensor, Tensor]:

            - leaders (Tensor): Index of each group's best descriptor, shape
              (G,), in descending score order.
            - members (Tensor): Bool (G, N), descriptor n is in group g;
              every descriptor is in exactly one group.
        """
        n = descriptors.size(0)
        if n == 0:
            return (scores.new_zeros(0, dtype=torch.long),
                    scores.new_zeros((0, 0), dtype=torch.bool))
        # Equal scores keep their order (a deterministic grouping).
        order = scores.argsort(descending=True, stable=True)
        with torch.no_grad():
            linked = self(descriptors, xy).sigmoid() > group_thr
        if not class_agnostic:
            linked &= labels[:, None] == labels[None, :]
        if allowed is not None:
            linked &= allowed
        linked = linked[order][:, order].cpu().numpy()
        # owner[p]: sorted position of the leader of sorted position p.
        owner = [-1] * n
        for i in range(n):
            if owner[i] >= 0:
                continue
            owner[i] = i
            for j in linked[i].nonzero()[0]:
                if owner[j] < 0:
                    owner[j] = i
        owner_sorted = torch.as_tensor(owner, device=order.device)
        leaders = order[owner_sorted == torch.arange(n, device=order.device)]
        owner = torch.empty_like(order)
        owner[order] = order[owner_sorted]
        return leaders, owner[None, :] == leaders[:, None]

    def merge_weights(self, leaders: Tensor, members: Tensor,
                      scores: Tensor) -> Tensor:
        """Weights that merge each group into one descriptor (``merge``).

        Args:
            leaders (Tensor): Shape (G,), see :meth:`group`.
            members (Tensor): Shape (G, N), see :meth:`group`.
            scores (Tensor): Shape (N,).

        Returns:
            Tensor: Shape (G, N); each row sums to 1 and is zero outside
            the group.
        """
        if self.merge == 'best':
            return (leaders[:, None] == torch.arange(
                members.size(1), device=leaders.device)[None]).float()
        weights = members.float() * scores[None, :]
        return weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
