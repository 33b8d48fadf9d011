"""The models of a comparison: names, configs and checkpoints.

Every model is a config file. The defaults are the zoo's synthetic configs:
PEP's recommended recipe, its Tab. 2 rows (baseline, +excavating,
+purifying) and the other methods; ``--ablations`` finds the Tab. 2 configs
of any PEP config by file name.
"""
import os.path as osp
from typing import List, NamedTuple, Optional

from mmengine.config import Config

from . import ROOT

DEFAULT_CONFIGS = (
    ('PEP', 'configs/pep/pep_r18_fpn_1200it_synthetic.py'),
    ('PEP-baseline', 'configs/pep/pep-baseline_r18_fpn_1200it_synthetic.py'),
    ('PEP-excavate', 'configs/pep/pep-excavate_r18_fpn_1200it_synthetic.py'),
    ('PEP-purify', 'configs/pep/pep-purify_r18_fpn_1200it_synthetic.py'),
    ('SOLOv2', 'configs/solov2/solov2_r18_fpn_1200it_synthetic.py'),
    ('SOLOv2-mmdet',
     'configs/solov2/solov2_r18_fpn_mmdet-defaults_1200it_synthetic.py'),
    ('CondInst', 'configs/condinst/condinst_r18_fpn_1200it_synthetic.py'),
    ('CondInst-mmdet',
     'configs/condinst/condinst_r18_fpn_mmdet-defaults_1200it_synthetic.py'),
    ('EmbedMask', 'configs/embedmask/embedmask_r18_fpn_1200it_synthetic.py'),
    ('SipMask', 'configs/sipmask/sipmask_r18_fpn_1200it_synthetic.py'),
    ('SpatialEmbeddings',
     'configs/spatial_embeddings/spatialemb_r18_fpn_1200it_synthetic.py'),
)

# The rows of the paper's Tab. 2: for a PEP config ``pep_<setting>.py``,
# ``pep-<row>_<setting>.py`` in the same folder (configs/pep/).
ABLATIONS = ('baseline', 'excavate', 'purify')


class ModelSpec(NamedTuple):
    """One row of the comparison."""
    name: str
    config: str
    checkpoint: Optional[str] = None


def ablation_configs(config: str) -> List[tuple]:
    """The Tab. 2 ablation configs of the PEP config ``config``.

    Found by file name: ``pep-<row>_<setting>.py`` next to
    ``pep_<setting>.py``, as in configs/pep/.

    Returns:
        list[tuple]: ``(row, path)`` for every row of :data:`ABLATIONS`.

    Raises:
        ValueError: If the file is not named ``pep_<setting>.py`` or an
            ablation config is missing.
    """
    folder, name = osp.split(config)
    if not name.startswith('pep_'):
        raise ValueError(f'--ablations: {config} is not named '
                         'pep_<setting>.py, so its ablation configs '
                         'pep-<row>_<setting>.py cannot be found')
    paths = [(row, osp.join(folder, f'pep-{row}_{name[len("pep_"):]}'))
             for row in ABLATIONS]
    missing = [path for _, path in paths if not osp.isfile(path)]
    if missing:
        raise ValueError(f'--ablations: no ablation config {missing} for '
                         f'{config}')
    return paths


def default_specs(configs=DEFAULT_CONFIGS) -> List[ModelSpec]:
    """The models of ``configs`` (``(name, config path from the
    repository root)`` pairs; by default ``compare.py``'s)."""
    return [ModelSpec(n, osp.join(ROOT, p)) for n, p in configs]


def build_specs(args) -> List[ModelSpec]:
    """The models to compare, in table order, with their checkpoints."""
    if args.configs:
        bases = []
        for item in args.configs:
            name, sep, path = item.partition('=')
            if not sep:
                path = item
                name = osp.splitext(osp.basename(item))[0]
            bases.append(ModelSpec(name, path))
    else:
        bases = default_specs()

    specs = []
    for spec in bases:
        specs.append(spec)
        if (args.ablations and args.configs
                and Config.fromfile(spec.config).model.type == 'PEP'):
            specs += [
                ModelSpec(f'{spec.name}-{row}', path)
                for row, path in ablation_configs(spec.config)
            ]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'model names must be unique, got {names}')

    named = [c for c in args.checkpoints if '=' in c]
    if named and len(named) != len(args.checkpoints):
        raise ValueError('--checkpoints: give all as NAME=PATH or all as '
                         'plain paths')
    if named:
        checkpoints = dict(c.split('=', 1) for c in named)
        unknown = set(checkpoints) - set(names)
        if unknown:
            raise ValueError(f'--checkpoints for unknown models {unknown}; '
                             f'the models are {names}')
    elif args.checkpoints:
        if len(args.checkpoints) != len(specs):
            raise ValueError(
                f'--checkpoints: {len(args.checkpoints)} paths for '
                f'{len(specs)} models {names}; use NAME=PATH for a subset')
        checkpoints = dict(zip(names, args.checkpoints))
    else:
        checkpoints = {}
    specs = [s._replace(checkpoint=checkpoints.get(s.name)) for s in specs]
    if args.eval_only:
        missing = [s.name for s in specs if s.checkpoint is None]
        if missing:
            raise ValueError(f'--eval-only needs a checkpoint for {missing}')
    return specs
