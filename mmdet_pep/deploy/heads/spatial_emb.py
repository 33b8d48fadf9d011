"""SpatialEmbeddings' post-processing
(:meth:`SpatialEmbHead._predict_by_feat_single` and
:func:`~mmdet_pep.models.dense_heads.spatial_emb_head.greedy_cluster`) with
static shapes.

The head's own ``forward`` and ``decode`` give the embeddings, sigma and
seed logits; the cropping to the input, the bandwidths ``exp(sigma_scale *
sigma)``, the finite check and the foreground ``seed > fg_thr`` are the
head's lines (:func:`prepare`). The greedy clustering, a data-dependent
``while`` loop in the head, becomes :func:`cluster_static`: ``T`` unrolled
steps, each one centre of every class at once, tensorised over all ``P =
H x W`` pixels (each class's foreground is a mask, not a gather). A step
mirrors one centre of :func:`greedy_cluster`'s loop line by line: while
more than ``min_pixels`` pixels are unclaimed, the unclaimed pixel with
the highest seed of at least ``seed_thr`` is the centre (ties: the lowest
pixel index, as its stable sort and ONNX ``ArgMax``); its proposal is the
foreground pixels where the Gaussian of its embedding and bandwidth
(:func:`~mmdet_pep.models.losses.spatial_emb_loss.instance_gaussians`,
written per embedding dimension with the same float operations) exceeds
``mask_thr``; it is an instance, scored by the centre's seed, if it has
more than ``min_pixels`` pixels and more than ``min_unclaimed`` of them
were unclaimed once the centre was; centre and proposal are claimed. A
class that has stopped proposes nothing more. The ``K = T x C`` proposals
then go to the head's final ranking, the ``max_per_img`` best scores
(:func:`..ops.gather_valid`).

**The cap.** ``T = min(test_cfg.max_centres, test_cfg.deploy_max_centres)``
(the latter :data:`DEPLOY_MAX_CENTRES` = 64 unless the config sets it)
bounds the number of centres *tried* per class, accepted or not. The eager
head bounds the same count by ``max_centres`` (1000 by default), so:

- the graph gives the eager head's instances with ``max_centres = T``:
  those of the first ``T`` centres tried in each class, in the same order;
- hence it gives the eager head's instances whenever the eager clustering
  tries at most ``T`` centres in every class of the image, i.e. stops by
  itself within ``T`` (no unclaimed seed of at least ``seed_thr`` left, or
  no more than ``min_pixels`` pixels unclaimed). :func:`cap_reached` says
  whether an image breaks this (run it over a val set to show that the cap
  changes nothing there). A class cut off after ``max_per_img`` instances
  loses nothing either: its later instances score lower.

"The same instances" is bit for bit in PyTorch (the tests compare with
:func:`greedy_cluster` on random maps, ties and non-finite pixels
included); onnxruntime's ``Exp`` may round a pixel whose Gaussian is within
an ulp of ``mask_thr`` the other way. Also assumed: ``fg_thr >= 0`` or
``seed_thr > 0`` (a candidate centre has a positive seed), fewer than
2**24 pixels (counts are float32), and, as in any top-k, scores tied at
the ``max_per_img`` boundary may be ranked either way (the head's
``argsort`` is not stable).

**Cost.** The clustering sees only the foreground pixels of any class (a
data-dependent number P_fg, in their order, plus one other pixel so that
nothing is empty; every other pixel is never a centre nor in a proposal).
A step is 16 elementwise / reduction passes over (C, P_fg) (ArgMax, the
Gaussian's 9, two counts, the claim) and ~60 graph nodes, ~45 of them
small; the proposals are kept until the final gather, T x C x P_fg bytes.
Measured with the zoo's config over every pixel, 1 thread: ~0.5 ms a step
at 128 x 128, ~50-90 ms at 800 x 1333 (on a busy 2-core machine).

Shape shorthand: C classes, S sigma channels (1 or 2), P = H x W pixels
of the input (the padded maps cropped to it), T steps, K = T x C
proposals, N instances returned.
"""
from typing import Tuple

import torch
from mmengine.config import ConfigDict
from torch import Tensor

from ..ops import boxes_of_masks, gather_valid

#: Default of ``test_cfg.deploy_max_centres``: centres tried per class in
#: the graph. With 32, 23 of the 100 demo val images needed more (rejected
#: proposals count too; docs/deploy.md); raise it for crowded data
#: (:func:`cap_reached` tells).
DEPLOY_MAX_CENTRES = 64


def num_steps(cfg: ConfigDict) -> int:
    """T: the centres tried per class in the graph (see the module
    docstring)."""
    return int(
        min(cfg.max_centres, cfg.get('deploy_max_centres',
                                     DEPLOY_MAX_CENTRES)))


def prepare(head, emb_preds: Tensor, seed_preds: Tensor, img_h,
            img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The inputs of the clustering of image 0, as
    :meth:`SpatialEmbHead._predict_by_feat_single` makes them.

    Args:
        head (SpatialEmbHead): The head.
        emb_preds (Tensor): (B, 2 + S, H', W') of the padded input.
        seed_preds (Tensor): Seed logits, (B, C, H', W').
        img_h, img_w: The input size H x W (traced sizes).

    Returns:
        tuple[Tensor]: Embeddings (2, P), bandwidths (S, P), seeds (C, P)
        and foreground (C, P) bool (``seed > fg_thr`` and finite).
    """
    cfg = head.test_cfg
    embeddings, sigma = head.decode(emb_preds)
    embeddings = embeddings[0, :, :img_h, :img_w].float()
    sigma = sigma[0, :, :img_h, :img_w].float()
    seeds = seed_preds[0, :, :img_h, :img_w].float().sigmoid()
    bandwidths = torch.exp(head.sigma_scale * sigma).flatten(1)
    finite = (torch.isfinite(embeddings).all(0)
              & torch.isfinite(bandwidths.view(sigma.shape)).all(0))
    seeds = seeds.flatten(1)
    fg = (seeds > cfg.fg_thr) & finite.flatten()[None]
    return embeddings.flatten(1), bandwidths, seeds, fg


def cluster_static(embeddings: Tensor, bandwidths: Tensor, seeds: Tensor,
                   fg: Tensor, cfg: ConfigDict, steps: int) -> dict:
    """:func:`greedy_cluster` of every class at once, ``steps`` unrolled
    centres per class (the module docstring states when it is exact).

    Args:
        embeddings (Tensor): (2, P).
        bandwidths (Tensor): (S, P).
        seeds (Tensor): Seed probabilities, (C, P).
        fg (Tensor): Foreground of each class, (C, P) bool.
        cfg (ConfigDict): The head's ``test_cfg``.
        steps (int): T.

    Returns:
        dict: ``masks`` (K, P) bool, ``scores`` (K,), ``labels`` (K,),
        ``valid`` (K,) bool, step-major (proposal ``t * C + c`` is class
        c's t-th centre); ``active`` (C,) bool: the classes that would try
        another centre after the T steps (cut off by the cap).
    """
    num_cls, num_sigma = seeds.shape[0], bandwidths.shape[0]
    # The candidate centres' seeds, 0 elsewhere (a candidate's seed is > 0
    # as it is > fg_thr >= 0, or >= seed_thr > 0).
    cand_seeds = torch.where(fg & (seeds >= cfg.seed_thr), seeds,
                             seeds.new_zeros((1, )))
    # The state: the unclaimed foreground as 1. / 0. (counts in float32
    # are exact below 2**24 pixels).
    unclaimed = fg.float()
    # greedy_cluster returns nothing if P <= min_pixels: the loop below
    # never starts then either (num_unclaimed starts at P).
    num_unclaimed = unclaimed.sum(1)
    # The embeddings of each class's foreground, +inf elsewhere: the
    # Gaussian of any centre is 0 (or NaN) there, so proposals stay in the
    # foreground as greedy_cluster's, which only sees the foreground.
    inf = embeddings.new_full((1, ), float('inf'))
    fg_emb = torch.where(fg[:, None], embeddings[None], inf)  # (C, 2, P)
    fg_emb = fg_emb[:, 0], fg_emb[:, 1]
    # A centre lies in its own proposal (Gaussian exp(0) = 1) unless
    # mask_thr >= 1; then it is claimed separately.
    centre_in_proposal = cfg.mask_thr < 1
    masks, scores, valid = [], [], []
    for _ in range(steps):
        # while len(order) and num_unclaimed > min_pixels (tried < limit:
        # steps <= max_centres); the next unclaimed centre of `order`.
        ranked = cand_seeds * unclaimed
        centre = ranked.argmax(1)  # ties: the first, as a stable sort
        best = ranked.gather(1, centre[:, None])[:, 0]
        active = (best > 0) & (num_unclaimed > cfg.min_pixels)
        # proposals = instance_gaussians(embeddings, centres, bandwidths)
        # > mask_thr, i.e. exp(-sum_d s_d (e_d - C_d)^2) summed over d as
        # its (G, 2, P) sum, here one (C, P) map per d with -s_d (negating
        # is exact). A class that has stopped gets its centre at +inf: an
        # empty proposal.
        centres = torch.where(active[:, None], embeddings[:, centre].t(),
                              inf)
        neg_sigmas = -bandwidths[:, centre].t()
        neg_dist = None
        for d in range(2):
            term = (fg_emb[d] - centres[:, d, None]).square() * \
                neg_sigmas[:, min(d, num_sigma - 1), None]
            neg_dist = term if neg_dist is None else neg_dist + term
        proposal = torch.exp(neg_dist) > cfg.mask_thr
        if not centre_in_proposal:
            proposal_or_centre = proposal | (
                torch.zeros_like(proposal).scatter(1, centre[:, None], True)
                & active[:, None])
        # size = proposal.sum(); unclaimed[proposal].sum() after
        # unclaimed[centre] = False.
        taken = proposal.float()
        size = taken.sum(1)
        freed = taken * unclaimed
        claims = freed.sum(1)
        if centre_in_proposal:
            free = claims - 1
        else:
            free = claims
            freed = proposal_or_centre.float() * unclaimed
            claims = freed.sum(1)
        accept = active & (size > cfg.min_pixels) & (
            free.double() > cfg.min_unclaimed * size.double())
        masks.append(proposal)
        scores.append(best)
        valid.append(accept)
        # unclaimed[centre] = False; unclaimed &= ~proposal
        unclaimed = unclaimed - freed
        num_unclaimed = num_unclaimed - claims
    best = (cand_seeds * unclaimed).max(1).values
    labels = torch.arange(num_cls, device=seeds.device).repeat(steps)
    return dict(
        masks=torch.cat(masks),
        scores=torch.cat(scores),
        labels=labels,
        valid=torch.cat(valid),
        active=(best > 0) & (num_unclaimed > cfg.min_pixels))


def spatial_emb_postprocess(detector, feats: Tuple[Tensor], img_h,
                            img_w) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """SpatialEmbeddings' instances of image 0 from the neck's features.

    Returns:
        tuple[Tensor]: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,),
        ``masks`` (N, H, W) bool, N <= ``max_per_img``.
    """
    head = detector.mask_head
    cfg = head.test_cfg
    emb_preds, seed_preds = head(feats)
    embeddings, bandwidths, seeds, fg = prepare(head, emb_preds, seed_preds,
                                                img_h, img_w)
    # Only the foreground pixels (of any class) take part: the others are
    # never a centre nor in a proposal. Their order is kept, so the first
    # best centre is the same pixel; one non-foreground pixel rides along
    # so that nothing is empty.
    union = fg.any(0)
    keep = torch.cat([union.nonzero()[:, 0], union.new_zeros(1).long()])
    last = torch.ones_like(keep, dtype=torch.bool)
    last[:-1] = False
    found = cluster_static(embeddings[:, keep], bandwidths[:, keep],
                           seeds[:, keep], fg[:, keep] & ~last[None], cfg,
                           num_steps(cfg))
    scores, labels, masks = gather_valid(found['valid'], found['scores'],
                                         cfg.max_per_img, found['labels'],
                                         found['masks'])
    # Back to every pixel: a foreground pixel's place among them.
    place = (union.long().cumsum(0) - 1).clamp(min=0)
    masks = (masks[:, place] & union[None]).reshape(-1, img_h, img_w)
    return boxes_of_masks(masks), scores, labels, masks


def cap_reached(detector, feats: Tuple[Tensor], img_h, img_w) -> bool:
    """Whether the cap cut off a class's clustering on this image (eager;
    for checking a data set): ``False`` means the graph's instances equal
    the eager head's."""
    head = detector.mask_head
    cfg = head.test_cfg
    emb_preds, seed_preds = head(feats)
    found = cluster_static(*prepare(head, emb_preds, seed_preds, img_h,
                                    img_w), cfg, num_steps(cfg))
    return bool(found['active'].any())
