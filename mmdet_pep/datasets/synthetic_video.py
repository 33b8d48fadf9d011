"""Deterministic synthetic video instance segmentation set: short clips of
moving look-alike shapes, in YouTube-VIS layout.

Each clip has a static textured background (the image set's) and 3-7
objects of the image set's shapes. Objects of a *group* share class and
colour (look-alikes) and move towards a common meeting point, so they
approach, touch and occlude one another during the clip; other objects move
on their own, some entering from or leaving through the border. Objects are
painted in a fixed depth order, every annotation is the *visible* mask of
its object in that frame, and an object keeps its track id for the clip
(absent from frames where it is outside the image or hidden).

Two annotation files per split, under ``out_dir/annotations/``:

- ``<split>.json``: the YouTube-VIS layout as released (``videos`` with
  ``file_names``; one annotation per track with per-frame
  ``segmentations``/``bboxes``/``areas``, ``None`` where absent);
- ``youtube_vis_<split>.json``: the same as mmdet's
  ``tools/dataset_converters/youtubevis2coco.py`` writes it (``videos``,
  ``images`` with ``video_id``/``frame_id``, one annotation per visible
  object and frame with its ``instance_id``), which mmdet's
  ``YouTubeVISDataset`` loads.

Clip ``i`` draws from the stream ``(seed, i)``: byte-identical output for a
seed, and the first clips independent of the number of clips.
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import cv2
import numpy as np

from .synthetic import (SHAPES, _background, _encode_instance, _rasterize,
                        _sample_colour, _sample_shape)


def _sample_tracks(rng: np.random.Generator, image_size: int,
                   num_frames: int, background_mean: np.ndarray,
                   num_classes: int) -> List[dict]:
    """Objects with class, colour, geometry and a centre per frame."""
    tracks = []
    scale = image_size / 128.
    num_groups = int(rng.integers(1, 3))
    for _ in range(num_groups):
        label = int(rng.integers(num_classes))
        colour = _sample_colour(rng, background_mean)
        meet = rng.uniform(0.3, 0.7, 2) * image_size
        meet_frame = rng.uniform(0.4, 0.8) * (num_frames - 1)
        for _ in range(int(rng.integers(2, 4))):
            shape = _sample_shape(rng, label,
                                  float(rng.uniform(18., 30.)) * scale)
            # Start ~1.5 sizes away from the meeting point and reach it
            # (overlapping the others there) at meet_frame.
            angle = rng.uniform(0., 2 * np.pi)
            start = meet + 1.5 * shape['size'] * np.array(
                [np.cos(angle), np.sin(angle)])
            velocity = (meet - start) / max(meet_frame, 1.)
            jitter = rng.integers(-12, 13, 3)
            tracks.append(
                dict(
                    shape=shape,
                    colour=np.clip(colour + jitter, 0, 255),
                    centres=[start + velocity * t
                             for t in range(num_frames)]))
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(num_classes))
        shape = _sample_shape(rng, label, float(rng.uniform(14., 34.)) *
                              scale)
        if rng.random() < 0.5:
            # Crosses the image: enters or leaves through the border.
            y = rng.uniform(0.2, 0.8) * image_size
            x0, x1 = -shape['size'], image_size + shape['size']
            if rng.random() < 0.5:
                x0, x1 = x1, x0
            offset = rng.uniform(-0.5, 0.5) * (x1 - x0)
            start = np.array([x0 + offset, y])
            velocity = np.array([(x1 - x0) / num_frames, 0.])
        else:
            start = rng.uniform(0.2, 0.8, 2) * image_size
            velocity = rng.uniform(-2., 2., 2) * scale
        tracks.append(
            dict(
                shape=shape,
                colour=_sample_colour(rng, background_mean),
                centres=[start + velocity * t for t in range(num_frames)]))
    order = rng.permutation(len(tracks))  # depth: later is in front
    return [tracks[i] for i in order]


def _render_clip(rng: np.random.Generator, image_size: int, num_frames: int,
                 min_area: int,
                 num_classes: int) -> Tuple[List[np.ndarray], List[dict]]:
    """Frames (uint8 RGB) and tracks with ``label`` and ``masks`` (one per
    frame, None where the object is not visible enough)."""
    background = _background(rng, image_size)
    tracks = _sample_tracks(rng, image_size, num_frames,
                            background.reshape(-1, 3).mean(0), num_classes)
    frames = []
    for track in tracks:
        track['masks'] = []
    for t in range(num_frames):
        owner = np.full((image_size, image_size), -1, np.int64)
        for index, track in enumerate(tracks):
            owner[_rasterize(track['shape'], track['centres'][t],
                             image_size)] = index
        image = background.copy()
        for index, track in enumerate(tracks):
            visible = owner == index
            if visible.sum() < min_area:
                # Fragments are not painted: every painted object pixel is
                # annotated.
                track['masks'].append(None)
                continue
            image[visible] = track['colour']
            track['masks'].append(visible)
        image += rng.normal(0., 3., image.shape)
        frames.append(np.clip(np.round(image), 0, 255).astype(np.uint8))
    return frames, [
        dict(label=track['shape']['label'], masks=track['masks'])
        for track in tracks if any(m is not None for m in track['masks'])
    ]


def generate_vis_split(out_dir: str,
                       split: str,
                       num_videos: int,
                       num_frames: int = 8,
                       image_size: int = 128,
                       seed: int = 0,
                       min_area: int = 20,
                       num_classes: int = 3) -> Tuple[str, str]:
    """Write one split of the synthetic video set.

    Frames go to ``out_dir/<split>/<video>/NNNNN.png``.

    Args:
        out_dir (str): Root of the data set.
        split (str): Split name.
        num_videos (int): Clips, at least 1.
        num_frames (int): Frames per clip, at least 2.
        image_size (int): Side of the square frames, at least 32.
        seed (int): Non-negative seed.
        min_area (int): Visible objects with fewer pixels are dropped from
            that frame (and not painted).
        num_classes (int): The first ``num_classes`` of :data:`SHAPES`.

    Returns:
        tuple[str, str]: The YouTube-VIS file and mmdet's converted file.
    """
    if num_videos < 1 or num_frames < 2 or image_size < 32 or seed < 0:
        raise ValueError('need num_videos >= 1, num_frames >= 2, '
                         'image_size >= 32 and seed >= 0, got '
                         f'{num_videos}, {num_frames}, {image_size}, {seed}')
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPES)}], got '
                         f'{num_classes}')
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    categories = [
        dict(id=i + 1, name=name) for i, name in enumerate(SHAPES[:num_classes])
    ]
    ytvis = dict(videos=[], annotations=[], categories=categories)
    cocovid = dict(
        videos=[], images=[], annotations=[], categories=categories)
    for index in range(num_videos):
        rng = np.random.default_rng([seed, index])
        tracks = []
        while not tracks:
            frames, tracks = _render_clip(rng, image_size, num_frames,
                                          min_area, num_classes)
        video_id = index + 1
        name = f'{video_id:05d}'
        os.makedirs(osp.join(out_dir, split, name), exist_ok=True)
        file_names = [f'{name}/{t:05d}.png' for t in range(num_frames)]
        for file_name, frame in zip(file_names, frames):
            cv2.imwrite(
                osp.join(out_dir, split, file_name),
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 3])
        ytvis['videos'].append(
            dict(
                id=video_id,
                file_names=file_names,
                height=image_size,
                width=image_size,
                length=num_frames))
        cocovid['videos'].append(dict(id=video_id, name=name))
        image_ids = []
        for t, file_name in enumerate(file_names):
            image_ids.append(len(cocovid['images']) + 1)
            cocovid['images'].append(
                dict(
                    id=image_ids[-1],
                    video_id=video_id,
                    frame_id=t,
                    file_name=file_name,
                    height=image_size,
                    width=image_size))
        for track in tracks:
            track_id = len(ytvis['annotations']) + 1
            encoded = [
                None if m is None else _encode_instance(m)
                for m in track['masks']
            ]
            ytvis['annotations'].append(
                dict(
                    id=track_id,
                    video_id=video_id,
                    category_id=track['label'] + 1,
                    iscrowd=0,
                    segmentations=[e and e['segmentation'] for e in encoded],
                    bboxes=[e and e['bbox'] for e in encoded],
                    areas=[e and e['area'] for e in encoded],
                    height=image_size,
                    width=image_size))
            for image_id, e in zip(image_ids, encoded):
                if e is None:
                    continue
                cocovid['annotations'].append(
                    dict(
                        id=len(cocovid['annotations']) + 1,
                        image_id=image_id,
                        video_id=video_id,
                        instance_id=track_id,
                        category_id=track['label'] + 1,
                        iscrowd=0,
                        **e))
    files = (osp.join(ann_dir, f'{split}.json'),
             osp.join(ann_dir, f'youtube_vis_{split}.json'))
    for path, content in zip(files, (ytvis, cocovid)):
        with open(path, 'w') as f:
            json.dump(content, f, sort_keys=True, separators=(',', ':'))
    return files


def generate_vis_dataset(out_dir: str,
                         num_train: int = 120,
                         num_val: int = 20,
                         num_frames: int = 8,
                         image_size: int = 128,
                         seed: int = 0,
                         num_test: int = 40) -> dict:
    """Write the train split (``seed``), the val split (``seed + 1``) and
    the held-out test split (``seed + 2``) of the synthetic video set: no
    clip of one split is one of another. Settings are chosen on val and
    reported on test, as for the image set.

    Returns:
        dict: ``{split: (YouTube-VIS file, mmdet's converted file)}``.
    """
    return {
        split: generate_vis_split(out_dir, split, num, num_frames,
                                  image_size, split_seed)
        for split, num, split_seed in (('train', num_train, seed),
                                       ('val', num_val, seed + 1),
                                       ('test', num_test, seed + 2))
    }


def ensure_vis_dataset(out_dir: str, **kwargs) -> bool:
    """Generate the synthetic video set in ``out_dir`` (``kwargs`` as
    :func:`generate_vis_dataset`) unless the YouTube-VIS annotation files
    of all three splits exist there.

    Returns:
        bool: Whether it was generated now.
    """
    if all(
            osp.isfile(
                osp.join(out_dir, 'annotations', f'youtube_vis_{split}.json'))
            for split in ('train', 'val', 'test')):
        return False
    generate_vis_dataset(out_dir, **kwargs)
    return True
