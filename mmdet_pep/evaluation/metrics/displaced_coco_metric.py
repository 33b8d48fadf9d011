"""CrowdCocoMetric that also scores the *displaced* ground truth apart.

A grid-based instance head (SOLO, PEP's perceiving stage) gives each
object the cells of its centre region; an object whose every cell is owned
by a neighbour is *displaced*: the grid has nowhere to predict it, and only
a mechanism such as PEP's excavator can find it. Which objects are
displaced depends on a head's target assignment (levels, scale ranges,
centre regions), not on the data alone, so the flags are an input of this
metric: the JSON that ``tools/analysis_tools/count_displaced.py --out``
writes for the evaluated annotation file. Every model is then scored on the
same instances, whatever its own head.
"""
import json
import os.path as osp
from typing import Dict

from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import METRICS
from .crowd_coco_metric import CrowdCocoMetric


def load_displaced(displaced_file: str) -> Dict[int, bool]:
    """Annotation id -> displaced, from ``count_displaced.py --out``'s JSON
    (its ``displaced`` object; keys are annotation ids as strings).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Naming the file, if it is not such a JSON.
    """
    if not osp.isfile(displaced_file):
        raise FileNotFoundError(
            f'displaced_file {displaced_file!r} not found; write it with '
            'tools/analysis_tools/count_displaced.py CONFIG ANN_FILE --out')
    try:
        with open(displaced_file) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{displaced_file}: not a JSON file ({e})') from None
    flags = content.get('displaced') if isinstance(content, dict) else None
    if not isinstance(flags, dict):
        raise ValueError(f'{displaced_file}: no "displaced" object (annotation '
                         'id -> true/false), as count_displaced.py --out '
                         'writes it')
    out = {}
    for key, value in flags.items():
        try:
            ann_id = int(key)
        except ValueError:
            raise ValueError(f'{displaced_file}: "displaced" key {key!r} is '
                             'not an annotation id') from None
        if not isinstance(value, bool):
            raise ValueError(f'{displaced_file}: the flag of annotation '
                             f'{key} is {value!r}, not true/false')
        out[ann_id] = value
    return out


@METRICS.register_module()
class DisplacedCocoMetric(CrowdCocoMetric):
    """:class:`CrowdCocoMetric` plus AP and recall@0.5 of the displaced and
    of the other ground truth instances.

    Everything CrowdCocoMetric reports is reported unchanged, and for each
    of ``bbox`` and ``segm`` (with ``coco/`` in front):

    - ``{task}_displaced_mAP``, ``{task}_placed_mAP``: COCO AP on the
      displaced instances and on the others (*placed*: they keep at least
      one cell, or are in no level's range), with the other subset ignored
      exactly as CrowdCocoMetric ignores the isolated instances for the
      crowded AP (:class:`SubsetCOCOeval`). -1 when a subset is empty.
    - ``{task}_displaced_recall50``, ``{task}_placed_recall50``: the
      fraction of the subset matched at IoU >= 0.5 by one of the top 100
      detections of its image and category (COCO's greedy matching). -1
      when a subset is empty.
    - ``num_displaced``, ``num_placed``: the subsets' sizes.

    Args:
        displaced_file (str): ``count_displaced.py --out`` JSON of the
            evaluated annotation file: its ``displaced`` object maps every
            non-iscrowd annotation id to true/false.
        *args, **kwargs: CrowdCocoMetric's arguments.

    Example:
        >>> test_evaluator = dict(
        ...     type='DisplacedCocoMetric',
        ...     ann_file='data/synthetic_crowded/annotations/'
        ...     'instances_test.json',
        ...     displaced_file='data/synthetic_crowded/annotations/'
        ...     'displaced_test.json',
        ...     metric=['bbox', 'segm'])
    """
    PARTITION = ('displaced', 'placed')

    def __init__(self, *args, displaced_file: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ann_file = kwargs.get('ann_file', args[0] if args else None)
        self.displaced_file = displaced_file
        self._displaced = load_displaced(displaced_file)

    def displaced_subsets(self) -> Dict[str, set]:
        """``displaced`` and ``placed`` annotation ids among the evaluated
        images and categories (iscrowd regions in neither).

        Raises:
            ValueError: If the displaced file misses some of them: it was
                written for another annotation file.
        """
        ids = list(self.crowd_flags())  # every evaluated non-iscrowd one
        missing = [i for i in ids if i not in self._displaced]
        if missing:
            raise ValueError(
                f'{self.displaced_file}: no flag for {len(missing)} of the '
                f'{len(ids)} evaluated annotations (e.g. id {missing[0]}): '
                f'it was not written for {self.ann_file}')
        return dict(
            displaced={i for i in ids if self._displaced[i]},
            placed={i for i in ids if not self._displaced[i]})

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CrowdCocoMetric's metrics, then the displaced/placed ones."""
        self._subsets = self.displaced_subsets()
        self._rows = []
        eval_results = super().compute_metrics(results)
        if 'num_crowded' not in eval_results:  # format_only, no bbox/segm
            return eval_results
        for name in self.PARTITION:
            eval_results[f'num_{name}'] = len(self._subsets[name])
        table = AsciiTable([[
            'task', 'displaced mAP', 'displaced R@0.5', 'placed mAP',
            'placed R@0.5'
        ]] + self._rows)
        MMLogger.get_current_instance().info(
            f'{eval_results["num_displaced"]} displaced, '
            f'{eval_results["num_placed"]} placed instances '
            f'({self.displaced_file})\n' + table.table)
        return eval_results

    def _evaluate_task(self, coco_dt: COCO, task: str,
                       subsets: Dict[str, set]) -> Dict[str, float]:
        """CrowdCocoMetric's scores of ``task``, then the same scores of
        the displaced/placed partition (its subset loop over
        :attr:`PARTITION` instead of ``SUBSETS``)."""
        out = super()._evaluate_task(coco_dt, task, subsets)
        self.SUBSETS = self.PARTITION  # this instance only, for one call
        try:
            partition = super()._evaluate_task(coco_dt, task, self._subsets)
        finally:
            del self.SUBSETS
        out.update((k, v) for k, v in partition.items()
                   if k.startswith(self.PARTITION))
        self._rows.append([task] + [
            f'{out[k]:.3f}' for k in ('displaced_mAP', 'displaced_recall50',
                                      'placed_mAP', 'placed_recall50')
        ])
        return out
