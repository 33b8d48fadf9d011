"""A COCO data set that refuses annotation files it would misread.

mmdet's :class:`~mmdet.datasets.CocoDataset` maps categories to labels with
``coco.get_cat_ids(cat_names=metainfo['classes'])`` and then drops, without
a word:

- annotations whose ``category_id`` is not a category of the file at all
  (a typo or an off-by-one id in a converter);
- every annotation of a name in ``metainfo['classes']`` that the file does
  not have (a misspelt class name): the remaining classes move down one
  label, so labels and ``metainfo['classes']`` disagree from then on;

- annotations of an image id that ``images`` does not have;

and when the file lists the classes in another order than
``metainfo['classes']``, label ``i`` is the ``i``-th category *of the file*,
not ``classes[i]``. An annotation without ``category_id`` fails inside
pycocotools with a bare ``KeyError``, and a data set left without images
(e.g. every image filtered by ``filter_empty_gt``) with mmengine's "need at
least one array to concatenate". :class:`CheckedCocoDataset` turns all of these
into errors at load time that name the file and the annotation, image or
class, and tags errors of the data pipeline with the image.
"""
from collections import Counter
from typing import Any, List, Union

from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS

from ..utils.deprecation import deprecated_alias


class CheckedCOCO(COCO):
    """mmdet's COCO API that checks the file's structure before indexing.

    pycocotools fails with a bare ``KeyError: 'category_id'`` on an
    annotation without a category, and mmdet silently ignores annotations
    of an image id that is not in ``images``. Both are ``ValueError`` here,
    naming the file and the entry.
    """
    REQUIRED = dict(
        images=('id', 'file_name', 'height', 'width'),
        categories=('id', 'name'),
        annotations=('id', 'image_id', 'category_id'))

    def __init__(self, annotation_file=None):
        self.source = annotation_file
        super().__init__(annotation_file=annotation_file)

    def createIndex(self):  # noqa: N802 (pycocotools' name)
        """Check required keys and image ids, then index as usual."""
        dataset = self.dataset
        for part, keys in self.REQUIRED.items():
            entries = dataset.get(part, [])
            if not isinstance(entries, list):
                raise ValueError(f'{self.source}: {part!r} must be a list, '
                                 f'got {type(entries).__name__}')
            singular = dict(
                images='image', categories='category',
                annotations='annotation')[part]
            for i, entry in enumerate(entries):
                missing = [k for k in keys if k not in entry]
                if missing:
                    raise ValueError(
                        f'{self.source}: {singular} #{i} (id '
                        f'{entry.get("id")}) has no {", ".join(missing)}')
        img_ids = {img['id'] for img in dataset.get('images', [])}
        for ann in dataset.get('annotations', []):
            if ann['image_id'] not in img_ids:
                raise ValueError(
                    f'{self.source}: annotation id {ann["id"]} refers to '
                    f'image id {ann["image_id"]}, which is not in images')
        super().createIndex()


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """:class:`~mmdet.datasets.CocoDataset` with load-time annotation checks.

    Raises ``ValueError`` while loading the annotation file if

    - an annotation's ``category_id`` is not among the file's
      ``categories`` (message: annotation id, image id and file name, the
      bad id and the valid ids);
    - a name of ``metainfo['classes']`` is missing from the file's
      categories or occurs more than once;
    - the file's categories of ``metainfo['classes']`` come in another
      order than ``metainfo['classes']``;
    - an image, category or annotation lacks a required key, or an
      annotation refers to an image id not in ``images``
      (:class:`CheckedCOCO`);
    - no image is left after ``filter_cfg``.

    An error in the data pipeline (a corrupt image, a malformed polygon)
    names the image it happened on.

    Annotations of categories that the file declares but
    ``metainfo['classes']`` leaves out are dropped as in ``CocoDataset``
    (that is how a subset of classes is trained), and their number per
    category is logged. Everything else (``filter_cfg``, ``test_mode``,
    ...) is ``CocoDataset``'s.
    """

    COCOAPI = CheckedCOCO

    def filter_data(self) -> List[dict]:
        """``CocoDataset``'s filter; no image left is an error.

        mmengine would otherwise fail later with "need at least one array
        to concatenate".
        """
        data_list = super().filter_data()
        if not data_list:
            raise ValueError(
                f'{self.ann_file}: no images to use ({len(self.data_list)} '
                f'in the file, filter_cfg={self.filter_cfg}, '
                f'test_mode={self.test_mode})')
        return data_list

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; a failure names the image it failed on.

        The exception keeps its type; the image path and index are added
        as a note (shown in the traceback, also from data loader workers),
        or on Python < 3.11 appended to its message.
        """
        try:
            return super().prepare_data(idx)
        except Exception as e:  # noqa: B902 (any transform's error)
            path = self.get_data_info(idx).get('img_path')
            if path is None or str(path) in str(e):
                raise
            note = (f'{type(self).__name__}: the pipeline failed on image '
                    f'{path!r} (index {idx})')
            if hasattr(e, 'add_note'):
                e.add_note(note)
            elif e.args and isinstance(e.args[0], str):
                e.args = (f'{e.args[0]} [{note}]', ) + e.args[1:]
            raise

    def load_data_list(self) -> List[dict]:
        """Load and check the annotation file."""
        self._categories_checked = False
        self._left_out = Counter()
        data_list = super().load_data_list()
        if not self._categories_checked:
            # No image to parse: the names can still be counted.
            classes = self.metainfo['classes']
            if len(self.cat_ids) != len(classes):
                raise ValueError(
                    f'{self.ann_file}: metainfo classes {tuple(classes)} '
                    f'match {len(self.cat_ids)} categories of the file '
                    f'instead of {len(classes)}')
        if self._left_out:
            print_log(
                f'{self.ann_file}: left out annotations of categories not '
                f'in metainfo classes: {dict(self._left_out)}', 'current')
        return data_list

    def _check_categories(self) -> None:
        """Each class name once in the file, in the order of ``classes``."""
        classes = tuple(self.metainfo['classes'])
        names = [cat['name'] for cat in self.coco.cats.values()]
        missing = [c for c in classes if c not in names]
        if missing:
            raise ValueError(
                f'{self.ann_file}: metainfo classes {missing} are not '
                f'categories of the annotation file, which has {names}; '
                f'mmdet would drop them and shift the labels of the other '
                f'classes')
        twice = [c for c in classes if names.count(c) > 1]
        if twice:
            raise ValueError(f'{self.ann_file}: categories {twice} occur '
                             f'more than once in the annotation file')
        file_order = tuple(self.coco.cats[i]['name'] for i in self.cat_ids)
        if file_order != classes:
            raise ValueError(
                f'{self.ann_file}: the annotation file lists the classes in '
                f'the order {file_order} but metainfo classes are '
                f'{classes}; mmdet numbers labels in the file order, so '
                f'label i would not be classes[i]. Use the file order in '
                f'metainfo classes')
        self._categories_checked = True

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Check the categories of one image's annotations, then parse."""
        if not self._categories_checked:
            self._check_categories()
        img_info = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            cat_id = ann.get('category_id')
            if cat_id not in self.coco.cats:
                raise ValueError(
                    f'{self.ann_file}: annotation id {ann.get("id")} of '
                    f'image id {img_info["img_id"]} '
                    f'({img_info.get("file_name")!r}) has category_id '
                    f'{cat_id!r}, which is not a category of the file '
                    f'(ids {sorted(self.coco.cats)})')
            if cat_id not in self.cat2label:
                self._left_out[self.coco.cats[cat_id]['name']] += 1
        return super().parse_data_info(raw_data_info)


#: Deprecated name of :class:`CheckedCocoDataset` (removed in 0.3.0).
PEPCocoDataset = deprecated_alias(CheckedCocoDataset, 'PEPCocoDataset',
                                  DATASETS)
