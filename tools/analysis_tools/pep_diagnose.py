"""How PEP's excavator and purifier behave on a data set, against the GT.

For every test image this runs PEP's inference and reads the trace of its
stages (original descriptors, excavation, node masks, purifier grouping;
``PEPHead.predict_by_feat(..., return_trace=True)``), giving every node the
identity of the GT instance its mask matches (mask IoU >= ``--iou`` with a
GT of its predicted class on the stride-4 grid; none otherwise). Counted
over the data set:

- **nodes**: originals and mined descriptors; how many match a GT, how many
  GTs the originals find, and how many *more* GTs the mined ones find
  (excavation recall gain), against how many mined nodes only repeat a GT
  an original already has (redundant) or match nothing (false);
- **key pixels** (the excavator's peaks above ``excavate.key_thr``, before
  any score filter): how many lie inside a GT mask (key precision), inside
  a GT that no original finds (a *missed* GT, the ones mining is for), and
  how many missed GTs hold a key pixel (key recall of missed GTs): whether
  the excavator looks in the right places, apart from the masks it makes;
- **displaced GTs** (every cell of their centre region owned by another
  instance under the head's own assignment,
  :func:`mmdet_pep_tools.displaced.image_flags`; the objects excavation
  exists for): how many the originals find anyway, how many the mined
  descriptors add, how many hold a key pixel, how many key pixels fall on
  them, whether one of their owners is among the originals the excavator
  mines around (``excavate.max_originals``; its cell inside an owner's
  mask), and whether their centre falls in the same excavation-map cell
  as an owner's centre (then the key pixel of the displaced object is the
  owner's own location, and its relative coordinates are zero);
- **purifier grouping** (on the nodes of each image, with the test config's
  ``group_thr`` and ``mask_iou_thr``): pair precision (grouped pairs of
  matched nodes that share their GT) and pair recall (pairs of nodes of
  one GT that are grouped), false merges (groups holding two or more GTs),
  splits (GTs whose nodes end in two or more groups), and unmatched nodes
  that join a group led by a matched one.

Example::

    python tools/analysis_tools/pep_diagnose.py \\
        configs/pep/pep_r18_fpn_1200it_synthetic.py work_dirs/pep/iter_1200.pth
"""
import argparse
import json
from collections import Counter

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmdet.registry import MODELS
from mmdet_pep.models.utils import gt_masks_on_grid
from mmdet_pep_tools.displaced import image_flags, variant_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Excavator and purifier statistics of PEP against the '
        'ground truth')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--iou',
        type=float,
        default=0.5,
        help='mask IoU at which a node matches a GT')
    parser.add_argument(
        '--max-images', type=int, help='the first N images of the split')
    parser.add_argument(
        '--variant',
        help='diagnose on this synthetic variant as the protocol tests it '
        '(compare.py --variants): its data, image size and classes')
    parser.add_argument(
        '--data-dir', default='data',
        help='where the variants\' data sets are (compare.py --data-dir)')
    parser.add_argument(
        '--split', choices=('test', 'val'), default='test',
        help='the config\'s test loader, or its val loader (choose '
        'settings on val)')
    parser.add_argument('--out', help='write the statistics as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as in tools/test.py')
    return parser.parse_args(argv)


def node_identities(masks: torch.Tensor, labels: torch.Tensor,
                    gt_masks: torch.Tensor, gt_labels: torch.Tensor,
                    iou_thr: float) -> torch.Tensor:
    """The GT index each node's mask matches (IoU >= ``iou_thr``, same
    class, the best one), or -1.

    Args:
        masks (Tensor): Node masks (N, h, w) bool.
        labels (Tensor): Node classes (N,).
        gt_masks (Tensor): GT masks on the same grid (G, h, w) bool.
        gt_labels (Tensor): (G,).
    """
    if len(masks) == 0 or len(gt_masks) == 0:
        return torch.full((len(masks), ), -1, dtype=torch.long)
    a = masks.flatten(1).float()
    b = gt_masks.flatten(1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    iou = inter / union.clamp(min=1)
    iou[labels[:, None] != gt_labels[None]] = -1
    best, gt = iou.max(1)
    return torch.where(best >= iou_thr, gt, -1)


def key_statistics(key_xy: torch.Tensor, gt_masks: torch.Tensor,
                   found: torch.Tensor) -> Counter:
    """Where one image's key pixels fall against its GT.

    Args:
        key_xy (Tensor): Key pixels (K, 2), (x, y) in the [-1, 1] frame of
            the padded input, as the head's cell centres.
        gt_masks (Tensor): GT masks on the mask grid (G, h, w) bool.
        found (Tensor): (G,) bool, GT matched by an original node.
    """
    stats = Counter(keys=len(key_xy), missed_gts=int((~found).sum()))
    if len(key_xy) == 0 or len(gt_masks) == 0:
        return stats
    h, w = gt_masks.shape[-2:]
    col = ((key_xy[:, 0] + 1) / 2 * w).long().clamp(0, w - 1)
    row = ((key_xy[:, 1] + 1) / 2 * h).long().clamp(0, h - 1)
    inside = gt_masks[:, row, col]  # (G, K)
    on_missed = inside & ~found[:, None]
    stats['keys_on_gt'] += int(inside.any(0).sum())
    stats['keys_on_missed_gt'] += int(on_missed.any(0).sum())
    stats['missed_gts_keyed'] += int(on_missed.any(1).sum())
    return stats


def displaced_statistics(flags: list, gt_masks: torch.Tensor,
                         found: torch.Tensor, mined_found: torch.Tensor,
                         key_xy: torch.Tensor, excavated_xy: torch.Tensor,
                         exc_size: tuple, pad_shape: tuple) -> Counter:
    """What the originals, the excavator's key pixels and the mined
    descriptors do for one image's displaced GTs.

    Args:
        flags (list[dict]): :func:`image_flags` of the image's GTs.
        gt_masks (Tensor): GT masks on the mask grid (G, h, w) bool.
        found (Tensor): (G,) bool, matched by an original node.
        mined_found (Tensor): (G,) bool, matched by a mined node.
        key_xy (Tensor): Key pixels (K, 2) in the [-1, 1] frame.
        excavated_xy (Tensor): Cells (M, 2) of the originals the excavator
            mined around, same frame.
        exc_size (tuple): (He, We) of the excavation map.
        pad_shape (tuple): (H, W) of the padded input.
    """
    displaced = torch.tensor([f['displaced'] for f in flags], dtype=torch.bool)
    stats = Counter(displaced_gts=int(displaced.sum()))
    if not displaced.any():
        return stats
    stats['displaced_found_by_originals'] += int((displaced & found).sum())
    stats['displaced_added_by_mining'] += int(
        (displaced & mined_found & ~found).sum())
    h, w = gt_masks.shape[-2:]

    def on_masks(xy):
        """(G, len(xy)) bool: the point lies in the GT's mask."""
        if len(xy) == 0:
            return torch.zeros((len(gt_masks), 0), dtype=torch.bool)
        col = ((xy[:, 0] + 1) / 2 * w).long().clamp(0, w - 1)
        row = ((xy[:, 1] + 1) / 2 * h).long().clamp(0, h - 1)
        return gt_masks[:, row, col]

    keyed = on_masks(key_xy)
    stats['keys_on_displaced'] += int(keyed[displaced].any(0).sum())
    stats['displaced_keyed'] += int(keyed[displaced].any(1).sum())
    excavated = on_masks(excavated_xy).any(1)  # (G,) an original inside
    he, we = exc_size

    def exc_cell(centre):
        return (int(centre[1] / pad_shape[0] * he),
                int(centre[0] / pad_shape[1] * we))

    for i in displaced.nonzero(as_tuple=True)[0].tolist():
        owners = flags[i]['owners']
        stats['displaced_owner_excavated'] += bool(
            owners and excavated[owners].any())
        stats['displaced_shares_owner_exc_cell'] += any(
            exc_cell(flags[i]['centre']) == exc_cell(flags[j]['centre'])
            for j in owners)
    return stats


def group_statistics(members: torch.Tensor,
                     identity: torch.Tensor) -> Counter:
    """Pair and group statistics of one image's grouping.

    Args:
        members (Tensor): (G, N) bool, node n in group g.
        identity (Tensor): (N,) GT index of each node, -1 for none.
    """
    stats = Counter()
    group_of = members.float().argmax(0)
    matched = identity >= 0
    same_gt = (identity[:, None] == identity[None]) & matched[:, None] & \
        matched[None]
    same_group = group_of[:, None] == group_of[None]
    off_diag = ~torch.eye(len(identity), dtype=torch.bool)
    both = matched[:, None] & matched[None] & off_diag
    stats['grouped_pairs'] += int((same_group & both).sum()) // 2
    stats['grouped_pairs_same_gt'] += int(
        (same_group & same_gt & off_diag).sum()) // 2
    stats['same_gt_pairs'] += int((same_gt & off_diag).sum()) // 2
    for g in range(len(members)):
        gts = set(identity[members[g]].tolist()) - {-1}
        stats['groups'] += 1
        stats['false_merges'] += len(gts) > 1
        leader_matched = bool(matched[members[g]].any())
        stats['unmatched_joining_matched'] += int(
            (members[g] & ~matched).sum()) if leader_matched else 0
    for gt in set(identity[matched].tolist()):
        stats['gts_with_nodes'] += 1
        stats['split_gts'] += len(set(
            group_of[identity == gt].tolist())) > 1
    return stats


def diagnose_image(head, outs, i: int, img_meta: dict, gt, iou_thr: float,
                   pad_divisor: int = 32):
    """The counts of image ``i`` of ``outs`` (see the module docstring),
    from the trace of the head's inference stages
    (``PEPHead.predict_by_feat(..., return_trace=True)``); displaced GTs
    under the head's assignment with the data preprocessor's
    ``pad_divisor``."""
    mlvl_desc, mlvl_cls, mask_feats, exc_feats = outs
    _, traces = head.predict_by_feat(
        [d[i:i + 1] for d in mlvl_desc], [c[i:i + 1] for c in mlvl_cls],
        mask_feats[i:i + 1],
        None if exc_feats is None else exc_feats[i:i + 1], [img_meta],
        rescale=False,
        return_trace=True)
    trace = traces[0]
    stats = Counter()
    h, w = mask_feats.shape[-2:]
    masks = gt.masks
    img_h, img_w = img_meta['img_shape'][:2]
    if (masks.height, masks.width) != (img_h, img_w):
        # Test pipelines load annotations after resizing the image.
        masks = masks.resize((img_h, img_w))
    gt_masks = gt_masks_on_grid(masks, torch.arange(len(gt)), (h, w),
                                head.mask_stride) > 0.5
    stats['gts'] += len(gt)
    # The head's own assignment of these GTs (the masks are at the image's
    # input size already: no resize).
    flags = image_flags(head, masks.to_ndarray().astype('uint8'),
                        dict(scale=(img_w, img_h), keep_ratio=False),
                        pad_divisor) if len(gt) else []
    nodes = trace.get('node_masks')
    if nodes is None:
        none = torch.zeros(len(gt), dtype=torch.bool)
        stats.update(displaced_statistics(
            flags, gt_masks.cpu(), none, none, torch.zeros(0, 2),
            torch.zeros(0, 2), (1, 1), img_meta['batch_input_shape']))
        return stats
    mined = nodes['mined'].cpu()
    identity = node_identities(nodes['masks'].cpu(), nodes['labels'].cpu(),
                               gt_masks.cpu(), gt.labels.cpu(), iou_thr)
    originals_gts = set(identity[~mined].tolist()) - {-1}
    stats['originals'] += int((~mined).sum())
    stats['originals_matched'] += int((identity[~mined] >= 0).sum())
    stats['gts_found_by_originals'] += len(originals_gts)
    stats['mined'] += int(mined.sum())
    mined_ids = identity[mined].tolist()
    stats['mined_false'] += sum(g < 0 for g in mined_ids)
    stats['mined_redundant'] += sum(g in originals_gts for g in mined_ids)
    stats['gts_added_by_mining'] += len(set(mined_ids) - originals_gts -
                                        {-1})
    found = torch.zeros(len(gt), dtype=torch.bool)
    found[list(originals_gts)] = True
    mined_found = torch.zeros(len(gt), dtype=torch.bool)
    mined_found[[g for g in mined_ids if g >= 0]] = True
    key_xy = trace['mine']['xy'].cpu() if 'mine' in trace else torch.zeros(
        0, 2)
    if 'mine' in trace:
        stats.update(key_statistics(key_xy, gt_masks.cpu(), found))
    if len(gt):
        num_ori = head.test_cfg.excavate.max_originals
        excavated = trace['select_originals']['xy'][:num_ori].cpu()
        exc_size = (tuple(exc_feats.shape[-2:])
                    if exc_feats is not None else (h // 2, w // 2))
        stats.update(displaced_statistics(
            flags, gt_masks.cpu(), found, mined_found, key_xy,
            excavated if 'mine' in trace else torch.zeros(0, 2), exc_size,
            img_meta['batch_input_shape']))
    if 'group' in trace:
        stats.update(
            group_statistics(trace['group']['members'].cpu(), identity))
    return stats


def summarize(stats: Counter) -> dict:
    def ratio(a, b):
        return stats[a] / stats[b] if stats[b] else None

    return dict(
        counts=dict(stats),
        originals_matched=ratio('originals_matched', 'originals'),
        gt_recall_originals=ratio('gts_found_by_originals', 'gts'),
        gt_recall_gain_mining=ratio('gts_added_by_mining', 'gts'),
        mined_redundant=ratio('mined_redundant', 'mined'),
        mined_false=ratio('mined_false', 'mined'),
        key_precision=ratio('keys_on_gt', 'keys'),
        key_precision_missed=ratio('keys_on_missed_gt', 'keys'),
        key_recall_missed=ratio('missed_gts_keyed', 'missed_gts'),
        pair_precision=ratio('grouped_pairs_same_gt', 'grouped_pairs'),
        pair_recall=ratio('grouped_pairs_same_gt', 'same_gt_pairs'),
        false_merge_rate=ratio('false_merges', 'groups'),
        split_rate=ratio('split_gts', 'gts_with_nodes'),
        displaced_fraction=ratio('displaced_gts', 'gts'),
        displaced_recall_originals=ratio('displaced_found_by_originals',
                                         'displaced_gts'),
        displaced_recall_gain_mining=ratio('displaced_added_by_mining',
                                           'displaced_gts'),
        key_recall_displaced=ratio('displaced_keyed', 'displaced_gts'),
        key_precision_displaced=ratio('keys_on_displaced', 'keys'),
        displaced_owner_excavated=ratio('displaced_owner_excavated',
                                        'displaced_gts'),
        displaced_shares_owner_exc_cell=ratio(
            'displaced_shares_owner_exc_cell', 'displaced_gts'))


def main(argv=None):
    import mmdet_pep; mmdet_pep.register_checkpoint_safe_globals()  # noqa
    args = parse_args(argv)
    if args.variant:
        cfg = variant_config(args.config, args.variant, args.data_dir)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
    if cfg.model.type != 'PEP':
        raise ValueError(f'{args.config}: not a PEP model (model type '
                         f'{cfg.model.type})')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    head = model.mask_head
    pad_divisor = int(
        cfg.model.get('data_preprocessor', {}).get('pad_size_divisor') or 1)
    loader_cfg = dict(cfg.test_dataloader)
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    stats = Counter()
    with torch.no_grad():
        for n, data in enumerate(Runner.build_dataloader(loader_cfg)):
            if args.max_images is not None and n >= args.max_images:
                break
            data = model.data_preprocessor(data, False)
            sample = data['data_samples'][0]
            outs = head(model.extract_feat(data['inputs']))
            stats += diagnose_image(head, outs, 0, sample.metainfo,
                                    sample.gt_instances, args.iou,
                                    pad_divisor)
    report = summarize(stats)
    for key, value in report.items():
        if key != 'counts':
            print(f'{key}: ' + ('n/a' if value is None else f'{value:.3f}'))
    print('counts:', json.dumps(report['counts']))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
