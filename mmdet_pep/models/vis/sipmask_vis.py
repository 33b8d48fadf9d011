"""SipMask-VIS: one-stage video instance segmentation on mmdet's tracking
API.

Shape shorthand: B clips, T frames, G GT instances of a frame, N key
samples.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from ..dense_heads.sipmask_head import SipMaskHead
from ..utils.misc import levels_to_points


@MODELS.register_module()
class SipMaskVIS(BaseMOTModel):
    """SipMask for video (Cao et al., "SipMask: Spatial Information
    Preservation for Fast Image and Video Instance Segmentation", ECCV
    2020, https://arxiv.org/abs/2007.14772).

    The image :class:`~mmdet_pep.models.detectors.SipMask` as ``detector``
    (unchanged: its losses and predictions are the image model's), a
    :class:`~mmdet_pep.models.tracking_heads.SipMaskTrackHead` on the same
    FPN features, and a tracker: :class:`~mmdet_pep.models.trackers.
    SipMaskVISTracker` (mmdet's ``MaskTrackRCNNTracker`` with the official
    memory) or mmdet's own. As mmdet's ``MaskTrackRCNN``: one key and one
    reference frame per clip in training, one clip at a time in testing.

    Args:
        detector (dict): A ``SipMask`` (or SipMask++) config.
        track_head (dict): The track head config.
        tracker (dict): The tracker config.
        data_preprocessor (dict, optional): A ``TrackDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 detector: dict,
                 track_head: dict,
                 tracker: dict,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.detector = MODELS.build(detector)
        if not isinstance(getattr(self.detector, 'bbox_head', None),
                          SipMaskHead):
            raise TypeError('SipMaskVIS needs a SipMask detector (a '
                            'SipMaskHead as bbox_head), got '
                            f'{type(self.detector).__name__}')
        self.track_head = MODELS.build(track_head)
        self.tracker = MODELS.build(tracker)

    @staticmethod
    def _split_frames(inputs: Tensor, data_samples: TrackSampleList
                      ) -> Tuple[Tensor, Tensor, list, list]:
        """Key and reference images (B, C, H, W) and their samples."""
        if inputs.dim() != 5 or inputs.size(1) != 2:
            raise ValueError('SipMaskVIS trains on one key and one reference '
                             'frame per clip: inputs must be (B, 2, C, H, '
                             f'W), got {tuple(inputs.shape)}')
        keys = [s.get_key_frames()[0] for s in data_samples]
        refs = [s.get_ref_frames()[0] for s in data_samples]
        batch = torch.arange(len(inputs))
        key_inds = torch.tensor([s.key_frames_inds[0] for s in data_samples])
        ref_inds = torch.tensor([s.ref_frames_inds[0] for s in data_samples])
        return (inputs[batch, key_inds].contiguous(),
                inputs[batch, ref_inds].contiguous(), keys, refs)

    def key_samples(self, outs: tuple, batch_gt_instances: list
                    ) -> Tuple[List[Tensor], List[Tensor]]:
        """The detector's positives that its mask loss uses: predicted
        boxes (detached, input pixels) and GT indices, per image.

        Args:
            outs (tuple): ``SipMaskHead.forward``'s outputs.
            batch_gt_instances (list[InstanceData]): GT of the key frames.
        """
        head = self.detector.bbox_head
        cls_scores, bbox_preds = outs[0], outs[1]
        points = head.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores],
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
        with torch.no_grad():
            head.get_targets(points, batch_gt_instances)
            pos_inds_list, pos_gt_inds_list = head._assignment
            del head._assignment
        if head.norm_on_bbox:
            bbox_preds = [b * s for b, s in zip(bbox_preds, head.strides)]
        flat = levels_to_points(bbox_preds)
        points = torch.cat(points)
        boxes, gt_inds = [], []
        for preds, pos_inds, pos_gt_inds in zip(flat, pos_inds_list,
                                                pos_gt_inds_list):
            _, kept_gt_inds, kept_boxes = head.usable_positives(
                points, preds, pos_inds, pos_gt_inds)
            boxes.append(kept_boxes)
            gt_inds.append(kept_gt_inds)
        return boxes, gt_inds

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """The image SipMask's losses on the key frames and the matching
        loss between key and reference frames.

        Args:
            inputs (Tensor): (B, 2, C, H, W).
            data_samples (list[TrackDataSample]): With the GT of both
                frames, ``instances_ids`` included.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``,
            ``loss_centerness``, ``loss_mask`` (and SipMask++'s
            ``loss_mask_iou``) and ``loss_match``.
        """
        key_imgs, ref_imgs, keys, refs = self._split_frames(
            inputs, data_samples)
        x = self.detector.extract_feat(key_imgs)
        ref_x = self.detector.extract_feat(ref_imgs)
        head = self.detector.bbox_head
        outs = head(x)
        gts = [s.gt_instances for s in keys]
        ignores = [s.get('ignored_instances') for s in keys]
        losses = head.loss_by_feat(*outs, gts, [s.metainfo for s in keys],
                                   ignores)
        boxes, gt_inds = self.key_samples(outs, gts)
        losses.update(
            self.track_head.loss(x, ref_x, boxes, gt_inds,
                                 [g.instances_ids for g in gts],
                                 [s.gt_instances.bboxes for s in refs],
                                 [s.gt_instances.instances_ids
                                  for s in refs]))
        return losses

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Detections and track ids of every frame of one clip.

        Args:
            inputs (Tensor): (1, T, C, H, W).
            data_samples (list[TrackDataSample]): One clip.
            rescale (bool): Boxes and masks at ``ori_shape``.

        Returns:
            list[TrackDataSample]: The clip, every frame with
            ``pred_instances`` and ``pred_track_instances``
            (``instances_id``); a clip without frames as it came.
        """
        if inputs.dim() != 5 or len(data_samples) != 1:
            raise ValueError('SipMaskVIS predicts one clip at a time: inputs '
                             f'must be (1, T, C, H, W), got '
                             f'{tuple(inputs.shape)}')
        clip = data_samples[0]
        if not len(clip):  # no frames: nothing to track
            return [clip]
        if clip[0].frame_id == 0:
            self.tracker.reset()
        for t in range(len(clip)):
            frame = clip[t]
            x = self.detector.extract_feat(inputs[:, t].contiguous())
            frame.pred_instances = self.detector.bbox_head.predict(
                x, [frame], rescale=rescale)[0]
            frame.pred_track_instances = self.tracker.track(
                model=self, feats=x, data_sample=frame, rescale=rescale,
                **kwargs)
        return [clip]

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[TrackSampleList] = None,
                 **kwargs) -> tuple:
        """Raw outputs of the detector head and the track map of every
        frame of (B, T, C, H, W) inputs, frames flattened into the batch."""
        imgs = inputs.flatten(0, 1)
        x = self.detector.extract_feat(imgs)
        return self.detector.bbox_head(x) + (self.track_head(x), )
