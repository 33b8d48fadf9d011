"""Re-save a *trusted* mmengine checkpoint so it loads under weights-only.

Checkpoints that mmengine wrote without
:func:`mmdet_pep.register_checkpoint_safe_globals` contain
``builtins.getattr`` (HistoryBuffer's statistics methods), which
mmdet_pep's safe loader refuses. This script unpickles such a file fully
(``weights_only=False``: run it only on files you trust), and writes it again
with mmdet_pep's checkpoint format, which the safe loader accepts.

    python tools/model_converters/resave_checkpoint.py IN.pth OUT.pth
"""
import argparse

import torch

from mmdet_pep.utils import (load_checkpoint_weights_only,
                             register_checkpoint_safe_globals)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='trusted checkpoint to convert')
    parser.add_argument('dst', help='output path')
    args = parser.parse_args(argv)
    register_checkpoint_safe_globals()  # the safe HistoryBuffer format
    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    torch.save(ckpt, args.dst)
    load_checkpoint_weights_only(args.dst, map_location='cpu')
    print(f'wrote {args.dst}; it loads with weights_only=True')


if __name__ == '__main__':
    main()
