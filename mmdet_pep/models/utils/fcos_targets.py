"""FCOS targets with the GT index of every positive, shared by the zoo's
FCOS-based heads (EmbedMask, SipMask): their mask losses need to know which
instance each positive location belongs to, which mmdet's
``FCOSHead._get_targets_single`` does not return.

Shape shorthand: P points over all pyramid levels, G GT instances.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

INF = 1e8


def fcos_targets_single(head,
                        gt_instances: InstanceData,
                        points: Tensor,
                        regress_ranges: Tensor,
                        num_points_per_lvl: List[int],
                        point_mask: Optional[Tensor] = None
                        ) -> Tuple[Tensor, ...]:
    """FCOS targets of one image, as mmdet's ``FCOSHead`` assigns them, and
    the positives with their GT indices.

    A point is a candidate of a GT when it lies inside the box (with
    ``head.center_sampling``: within ``head.center_sample_radius`` strides
    of the *box* centre, clipped to the box, as FCOS; mmdet's CondInst uses
    the mask's centre of mass instead), its largest box distance lies in
    its level's regress range, and ``point_mask`` (if given) allows it; of
    several candidates the smallest box wins.

    Args:
        head: An ``FCOSHead``: ``num_classes``, ``strides``,
            ``center_sampling``, ``center_sample_radius``.
        gt_instances (InstanceData): ``bboxes`` (G, 4) and ``labels`` (G,).
        points (Tensor): (P, 2) point coordinates of all levels.
        regress_ranges (Tensor): (P, 2) range of each point.
        num_points_per_lvl (list[int]): Points of each level.
        point_mask (Tensor, optional): (P, G) bool, which points may be
            positives of which GT (e.g. only those inside its mask).

    Returns:
        tuple: ``labels`` (P,) with background ``head.num_classes``,
        ``bbox_targets`` (P, 4) distances in pixels, ``pos_inds``
        (num_pos,) and ``pos_gt_inds`` (num_pos,), the layout mmdet's
        ``CondInstBboxHead.get_targets`` batches.
    """
    num_points = points.size(0)
    gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
    if len(gt_instances) == 0:
        return (gt_labels.new_full((num_points, ), head.num_classes),
                gt_bboxes.new_zeros((num_points, 4)),
                gt_labels.new_zeros((0, ), dtype=torch.long),
                gt_labels.new_zeros((0, ), dtype=torch.long))
    xs, ys = points[:, 0, None], points[:, 1, None]  # (P, 1)
    x1, y1, x2, y2 = gt_bboxes.T  # each (G,)
    bbox_targets = torch.stack((xs - x1, ys - y1, x2 - xs, y2 - ys), -1)
    if head.center_sampling:
        strides = torch.cat([
            points.new_full((n, 1), stride)
            for n, stride in zip(num_points_per_lvl, head.strides)
        ])
        radius = strides * head.center_sample_radius  # (P, 1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        inside = ((xs > torch.maximum(cx - radius, x1))
                  & (xs < torch.minimum(cx + radius, x2))
                  & (ys > torch.maximum(cy - radius, y1))
                  & (ys < torch.minimum(cy + radius, y2)))
    else:
        inside = bbox_targets.min(-1).values > 0
    max_dist = bbox_targets.max(-1).values
    inside &= ((max_dist >= regress_ranges[:, :1])
               & (max_dist <= regress_ranges[:, 1:]))
    if point_mask is not None:
        inside &= point_mask
    areas = ((x2 - x1) * (y2 - y1)).expand(num_points, -1)
    min_area, gt_inds = torch.where(inside, areas, INF).min(dim=1)
    labels = torch.where(min_area == INF, head.num_classes,
                         gt_labels[gt_inds])
    pos_inds = (labels < head.num_classes).nonzero().reshape(-1)
    return (labels, bbox_targets[torch.arange(num_points), gt_inds],
            pos_inds, gt_inds[pos_inds])
