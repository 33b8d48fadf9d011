"""Video data that fails loudly: YouTube-VIS files and clip frames checked,
every error naming the clip and the frame.

What mmdet's ``YouTubeVISDataset`` and its pipeline do with bad input:

- a file without ``videos``, which mmdet's converter always writes: read
  from its images' ``video_id``; an image (COCO) file, whose images have
  none, becomes one clip per image, **silently**;
- the released YouTube-VIS layout (``videos`` with ``file_names``, no
  ``images``): no clip at all, **silently**;
- a frame missing from a clip's ``images`` (a gap in ``frame_id``): the
  clip is one frame shorter, **silently**, its later frames one place
  earlier in the clip the tracker and the YouTube-VIS metric see;
- a clip whose frames have different sizes, in the file or on disk: a
  NumPy stacking error that names nothing (``PackTrackInputs``), or masks
  of several sizes in one clip;
- a clip with no frame: left out, **silently**;
- a missing or corrupt frame file: an error naming the file only.

:class:`CheckedYouTubeVISDataset` and :class:`CheckedLoadFrameFromFile`
turn each of these into an error naming the clip and the frame, except the
clip without frames, which is left out with a warning naming it (nothing
to track: no tracks).
"""
import json
from collections import defaultdict
from typing import Dict, List

from mmengine import fileio
from mmengine.logging import print_log

from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS, TRANSFORMS
from .transforms import CheckedLoadImageFromFile


def _clip(video: dict) -> str:
    name = video.get('name')
    return f"clip {video['id']}" + (f' ({name!r})' if name else '')


def check_video_annotations(data: dict, source: str) -> List[dict]:
    """Check a YouTube-VIS file in mmdet's layout (the one mmdet's
    ``youtubevis2coco.py`` writes: ``videos``, ``images`` with
    ``video_id`` and ``frame_id``, ``annotations``).

    Args:
        data (dict): The file's content.
        source (str): Its name, for the messages.

    Returns:
        list[dict]: The videos without frames.

    Raises:
        ValueError: If ``videos`` or ``images`` is missing, an image names
            no video of the file, a clip's frame ids are not 0, 1, ...,
            n - 1 (a missing or repeated frame), or a clip's frames differ
            in size; naming the clip and the frame.
    """
    if 'videos' not in data:
        kind = (' (its images have no video_id: an image file such as '
                "COCO's?)" if data.get('images') and
                'video_id' not in data['images'][0] else '')
        raise ValueError(
            f"{source} has no 'videos'{kind}: not a YouTube-VIS file in "
            "mmdet's layout (videos; images with video_id and frame_id; "
            "annotations with instance_id), which mmdet's "
            'tools/dataset_converters/youtubevis2coco.py writes')
    if 'images' not in data:
        raw = any('file_names' in v for v in data['videos'])
        raise ValueError(
            f"{source} has no 'images'" +
            (": the YouTube-VIS layout as released (videos with "
             "file_names); convert it with mmdet's "
             'tools/dataset_converters/youtubevis2coco.py' if raw else ''))
    videos = {v['id']: v for v in data['videos']}
    frames: Dict[int, List[dict]] = defaultdict(list)
    for image in data['images']:
        if image.get('video_id') not in videos:
            raise ValueError(
                f"{source}: image {image.get('id')} "
                f"({image.get('file_name')!r}) belongs to video "
                f"{image.get('video_id')!r}, which is not in 'videos'")
        if not isinstance(image.get('frame_id'), int):
            raise ValueError(
                f"{source}: {_clip(videos[image['video_id']])}, image "
                f"{image.get('id')} ({image.get('file_name')!r}) has no "
                'integer frame_id')
        frames[image['video_id']].append(image)
    for video_id, images in frames.items():
        clip = _clip(videos[video_id])
        ids = sorted(image['frame_id'] for image in images)
        if ids != list(range(len(ids))):
            missing = sorted(set(range(ids[-1] + 1)) - set(ids))
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(
                f'{source}: {clip} has frames {ids[0]}..{ids[-1]} ' +
                (f'without frame(s) {missing}' if missing else
                 f'with frame(s) {repeated} twice') +
                ': a clip holds frames 0, 1, ..., n - 1')
        first = min(images, key=lambda image: image['frame_id'])
        size = (first.get('height'), first.get('width'))
        for image in images:
            if (image.get('height'), image.get('width')) != size:
                raise ValueError(
                    f"{source}: {clip}, frame {image['frame_id']} "
                    f"({image.get('file_name')!r}) is "
                    f"{image.get('height')} x {image.get('width')}, frame "
                    f"{first['frame_id']} {size[0]} x {size[1]}: the "
                    'frames of a clip have one size')
    return [v for v in data['videos'] if v['id'] not in frames]


@DATASETS.register_module()
class CheckedYouTubeVISDataset(YouTubeVISDataset):
    """mmdet's ``YouTubeVISDataset`` that checks its file first
    (:func:`check_video_annotations`) and warns about, and leaves out, the
    clips without frames.

    The file is read once more for the check (a few seconds for
    YouTube-VIS' train file). Use :class:`CheckedLoadFrameFromFile` in the
    pipeline to check the frames on disk too.
    """

    def load_data_list(self) -> List[dict]:
        with fileio.get_local_path(self.ann_file) as path:
            with open(path) as f:
                data = json.load(f)
        empty = check_video_annotations(data, self.ann_file)
        del data
        if empty:
            print_log(
                f'{self.ann_file}: {len(empty)} clip(s) without frames left '
                'out (no tracks): ' + ', '.join(_clip(v) for v in empty),
                'current',
                level='WARNING')
        return super().load_data_list()


@TRANSFORMS.register_module()
class CheckedLoadFrameFromFile(CheckedLoadImageFromFile):
    """:class:`CheckedLoadImageFromFile` for one frame of a clip (inside
    mmdet's ``TransformBroadcaster``): a missing or corrupt file raises its
    error with the clip and the frame named, and a frame whose size differs
    from the size the file gives its clip (``height``, ``width``, checked
    alike for all frames by :class:`CheckedYouTubeVISDataset`) raises
    ``ValueError``, instead of a stacking error that names nothing.

    Args:
        **kwargs: :class:`CheckedLoadImageFromFile` arguments, without
            ``ignore_empty`` (a clip cannot skip a frame).
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('ignore_empty'):
            raise ValueError('CheckedLoadFrameFromFile cannot skip a frame '
                             '(ignore_empty): a clip needs all its frames')
        super().__init__(**kwargs)

    def transform(self, results: dict) -> dict:
        where = (f"clip {results.get('video_id')}, frame "
                 f"{results.get('frame_id')} ({results['img_path']!r})")
        try:
            results = super().transform(results)
        except (OSError, ValueError) as e:  # missing, corrupt, bad depth
            raise type(e)(f'{where}: {e}') from e
        size = (results.get('height'), results.get('width'))
        if None not in size and tuple(results['ori_shape']) != size:
            h, w = results['ori_shape']
            raise ValueError(f'{where} is {h} x {w}, but its annotation '
                             f'file gives the clip {size[0]} x {size[1]}')
        return results
