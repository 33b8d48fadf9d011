"""SipMask-VIS's tracker: MaskTrack R-CNN's matching with the official
SipMask-VIS memory.

Shape shorthand: N detections of the current frame, M tracks in memory.
"""
from typing import Optional, Tuple

import torch

from mmdet.models.trackers import MaskTrackRCNNTracker
from mmdet.registry import MODELS

LABEL_MEMORIES = ('first', 'last')
ASSIGNMENTS = ('official', 'unique')


@MODELS.register_module()
class SipMaskVISTracker(MaskTrackRCNNTracker):
    """The tracker of SipMask-VIS (Cao et al., "SipMask: Spatial
    Information Preservation for Fast Image and Video Instance
    Segmentation", ECCV 2020, https://arxiv.org/abs/2007.14772).

    mmdet's ``MaskTrackRCNNTracker`` scores a detection against the M
    tracks and a "new object" column as the official code does (log-softmax
    of the track head's logits + 1 log(score) + 2 IoU + 10 same label,
    ``match_coeff`` and ``compute_comp_scores`` in
    SipMask-VIS/mmdet/models/anchor_heads/sipmask_head.py:166, 544-562) and
    assigns ids the same way (:643-667). Its memory differs from the
    official one, which this class restores (``get_bboxes``, :620-667):

    - **Never forgets** within a clip (``num_frames_retain=None``): the
      official memory grows by every new object and drops none, so an
      object that reappears after any gap can take its identity back.
      mmdet's rule, forgetting a track after ``num_frames_retain`` frames
      without a match, with an int.
    - **The first label** (``label_memory='first'``): the official memory
      appends a track's label when the track starts (:656) and updates only
      its embedding and box on a match (:666-667), so the label bonus
      compares with the label the track started with. ``'last'`` is
      mmdet's: the label of the track's latest detection.
    - One entry per track (its latest embedding, box, score, mask), as the
      official memory; mmdet keeps every frame's, though it reads only the
      latest.

    **Assignment** (``assignment``). The official rule (mmdet's
    ``assign_ids``, official :643-667) takes each detection's best column;
    when two detections pick the same track, the higher match score gets
    its id, but a loser that came first keeps the same id (two instances of
    one identity in a frame, the later one overwriting the memory) and a
    loser that came later gets none and is dropped from the output (mmdet
    marks this "TODO: fix the bug"). ``'unique'`` resolves the conflicts
    one to one: all (detection, column) pairs by falling match score, each
    detection takes its first pair whose track is still free, and the "new
    object" column is always free, so every detection is kept and no id is
    given twice. Same scores, same weights; only conflicts differ.

    ``SipMaskVIS.predict`` empties the memory at the first frame of every
    clip. The official code does so only when that frame has a detection
    (it returns before the reset otherwise, :608-611, 620), carrying the
    previous clip's tracks into a clip that starts empty; not reproduced.

    Args:
        match_weights (dict): ``det_score``, ``iou`` and ``det_label``
            weights of the match score; the official 1, 2, 10.
        num_frames_retain (int, optional): None never forgets (official);
            an int >= 1 forgets a track after that many frames without a
            match (mmdet's rule).
        label_memory (str): ``'first'`` (official) or ``'last'`` (mmdet's).
        assignment (str): ``'official'`` (the official and mmdet's rule)
            or ``'unique'`` (one to one, no detection dropped).
        **kwargs: Other ``BaseTracker`` arguments; ``momentums`` is not
            supported (the memory holds one entry per track).
    """

    def __init__(self,
                 match_weights: dict = dict(
                     det_score=1.0, iou=2.0, det_label=10.0),
                 num_frames_retain: Optional[int] = None,
                 label_memory: str = 'first',
                 assignment: str = 'official',
                 **kwargs) -> None:
        if num_frames_retain is not None and num_frames_retain < 1:
            raise ValueError('num_frames_retain must be None (never forget) '
                             f'or >= 1, got {num_frames_retain}')
        if label_memory not in LABEL_MEMORIES:
            raise ValueError(f'label_memory must be one of {LABEL_MEMORIES}, '
                             f'got {label_memory!r}')
        if assignment not in ASSIGNMENTS:
            raise ValueError(f'assignment must be one of {ASSIGNMENTS}, '
                             f'got {assignment!r}')
        if kwargs.get('momentums') is not None:
            raise ValueError('SipMaskVISTracker keeps the latest entry of a '
                             'track: momentums are not supported')
        super().__init__(
            match_weights=match_weights,
            num_frames_retain=num_frames_retain,
            **kwargs)
        self.label_memory = label_memory
        self.assignment = assignment

    def pop_invalid_tracks(self, frame_id: int) -> None:
        """mmdet's forgetting, only with an int ``num_frames_retain``."""
        if self.num_frames_retain is not None:
            super().pop_invalid_tracks(frame_id)

    def update_track(self, id: int, obj: Tuple[torch.Tensor]) -> None:
        """Replace the track's entries by the matched detection's (with
        ``label_memory='first'``, all but its label)."""
        track = self.tracks[id]
        for key, value in zip(self.memo_items, obj):
            if key == 'labels' and self.label_memory == 'first':
                continue
            track[key] = [value[None]]

    def assign_ids(self, match_scores: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Ids of the N detections from their (N, 1 + M) match scores
        (column 0: a new object); -1 drops a detection (``'official'``
        only).

        Returns:
            tuple: ``ids`` (N,) and each track's best match score (M,),
            -1e6 where no detection took it.
        """
        if self.assignment == 'official':
            return super().assign_ids(match_scores)
        num_dets, num_cols = match_scores.shape
        ids = match_scores.new_full((num_dets, ), -1, dtype=torch.long)
        best = match_scores.new_full((num_cols - 1, ), -1e6)
        decided, taken = [False] * num_dets, [False] * (num_cols - 1)
        # Stable: ties go to the earlier detection, then the earlier column.
        order = match_scores.flatten().argsort(descending=True, stable=True)
        for pair in order.tolist():
            det, col = divmod(pair, num_cols)
            if decided[det] or (col > 0 and taken[col - 1]):
                continue
            decided[det] = True
            if col > 0:
                taken[col - 1] = True
                ids[det] = self.ids[col - 1]
                best[col - 1] = match_scores[det, col]
        # Every detection is decided (column 0 is never taken): those still
        # at -1 chose a new object; new ids in detection order.
        for det in (ids == -1).nonzero().flatten().tolist():
            ids[det] = self.num_tracks
            self.num_tracks += 1
        return ids, best
