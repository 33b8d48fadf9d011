"""The library of the scripts in ``tools/``: not part of the model package.

``mmdet_pep`` holds the models, data, evaluation and hooks that a config
builds; this sibling package holds what only the tools need:

- ``specs``, ``protocol``, ``runs``, ``training``, ``comparison``,
  ``report``: the parts of ``tools/analysis_tools/compare.py`` (the models
  to compare, the multi-seed protocol's configs and judging, running it,
  training and testing one run, the single comparison with latency, its
  report);
- ``results``, ``results_table``: the result store (one file per run) and
  the tables of a results folder;
- ``tables``, ``blocks``, ``reported``: the generated blocks of the READMEs
  and metafiles (``tools/analysis_tools/build_tables.py``), from the result
  files and, for the papers' numbers, ``docs/results/reported.yml``;
- ``image_init``: the image weights the synthetic video models start
  from, made when missing (``compare_vis.py``, ``tools/train.py``'s
  check);
- ``displaced``: the GT instances that lose their grid cells under a PEP
  head's assignment (``tools/analysis_tools/count_displaced.py``);
- ``variant_data``: where the synthetic variants' data live, generated
  (with their displaced flags) when missing;
- ``provenance``: which config and code a result comes from;
- ``benchmark``, ``memory``: latency and step time, peak memory;
- ``config_rewrites``, ``launch``: command-line rewrites of a config and
  launcher helpers of ``tools/train.py`` and ``tools/test.py``.

The tools run from a checkout of the repository: :data:`ROOT` is its root.
"""
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
