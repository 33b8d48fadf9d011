"""Build every generated table from the committed result files.

One source of truth for the numbers: this rewrites

- in ``README.md`` and ``configs/*/README.md``, the text between
  ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` (blocks ``zoo``,
  ``demo``, ``vis``, ``deploy``, ``displaced``, ``tab2``, ``pep``,
  ``solov2``, ``condinst``, ``embedmask``, ``sipmask``,
  ``spatial_embeddings``; ``mmdet_pep_tools.tables.TABLES``);
- in ``configs/*/metafile.yml``, the ``Results`` of the synthetic configs'
  entries (mask and box AP on the held-out test split);
- ``docs/results/README.md`` (the current runs) and the archives' pages
  under ``docs/experiments/results/``,
- ``docs/results_vis/README.md`` and the README's block ``vis`` (the
  video runs),

from the result files under ``docs/results/`` (runs that the protocol of
``compare.py`` judges current, tested on the held-out test split), the
latency files under ``docs/results/latency/`` and the video result files
under ``docs/results_vis/`` (judged as ``compare_vis.py`` judges them); and
from ``docs/results/reported.yml`` (the numbers papers and official code
bases report, not reproduced here):

- in ``configs/*/metafile.yml``, the ``Results`` of every other entry
  (COCO, Cityscapes, YouTube-VIS);
- in the config READMEs, the text between ``<!-- reported:NAME -->`` and
  ``<!-- /reported:NAME -->`` (the file's ``tables``).

Examples::

    python tools/analysis_tools/build_tables.py          # rewrite
    python tools/analysis_tools/build_tables.py --check  # diff, exit 1
    python tools/analysis_tools/build_tables.py configs/pep/README.md
"""
import argparse
import sys

from mmdet_pep_tools import ROOT
from mmdet_pep_tools.blocks import MarkerError, diff, render, write
from mmdet_pep_tools.reported import ReportedError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'files', nargs='*',
        help='only these generated files (paths from the repository root)')
    parser.add_argument(
        '--check', action='store_true',
        help='write nothing: print the diff of every file that differs from '
        'what is built and exit with 1 if one does')
    parser.add_argument('--root', default=ROOT,
                        help='repository root (default: this checkout)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        built = render(args.root, args.files or None)
    except (MarkerError, ReportedError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.check:
        stale = [path for path, (old, new) in built.items() if old != new]
        for path in stale:
            old, new = built[path]
            print(diff(path, old, new))
        print(f'[build_tables] {len(stale)} of {len(built)} generated files '
              'differ from the result files' +
              (f': {stale}; run tools/analysis_tools/build_tables.py'
               if stale else ''))
        return 1 if stale else 0
    changed = write(args.root, built)
    print(f'[build_tables] {len(built)} generated files, rewrote '
          f'{len(changed)}: {changed}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
