"""The report of the single comparison: ``comparison.md``, ``.json`` and
``.png`` (mask AP against latency)."""
import json
import os.path as osp
from typing import List


def fmt(value, scale=1., digits=1) -> str:
    """A number for the table, or ``n/a``."""
    return 'n/a' if value is None else f'{value * scale:.{digits}f}'


COLUMNS = ('Model', 'box AP', 'mask AP', 'Params (M)', 'FLOPs (G)',
           'Latency (ms)', 'FPS', 'Floor (ms)', 'Head (ms)', 'Train step (ms)',
           'Peak mem infer / train (MiB)')


def table_row(r: dict) -> List[str]:
    lat, floor = r['latency'], r['floor_latency']
    step = r['train_step']
    train_mem = r['peak_memory']['train']
    if lat is None:  # a report written before time_models
        lat_cells = ['pending'] * 4
    else:
        lat_cells = [
            f'{lat["median_ms"]:.1f} ({lat["p10_ms"]:.1f}-'
            f'{lat["p90_ms"]:.1f})', f'{lat["fps"]:.1f}',
            f'{floor["median_ms"]:.1f}', f'{r["head_overhead_ms"]:.1f}'
        ]
    return [
        r['name'],
        fmt(r['bbox_mAP'], 100),
        fmt(r['segm_mAP'], 100),
        fmt(r['params'], 1e-6, 2),
        fmt(r['flops'], 1e-9, 2),
        *lat_cells,
        fmt(step and step['median_ms'], digits=0),
        f'{r["peak_memory"]["inference"]["peak_mb"]:.0f} / '
        f'{fmt(train_mem and train_mem["peak_mb"], digits=0)}',
    ]


def markdown(report: dict) -> str:
    """``comparison.md``: settings, the table and the notes."""
    s = report['settings']
    models = report['models']
    train_devices = sorted(
        {r['train_device']
         for r in models if r['train_device']}) or ['none (--eval-only)']
    lines = [
        '# Model comparison', '',
        f'Latency, FLOPs and inference memory on {s["device"]} '
        f'({s["device_name"]}, {s["threads"]} torch threads); training on '
        f'{", ".join(train_devices)}. torch {s["torch"]}, mmdet '
        f'{s["mmdet"]}, mmengine {s["mmengine"]}.', '',
        '- AP: COCO AP (%) of the test split with the config\'s evaluator.',
        f'- Latency: per image at batch 1 from the test loader, '
        f'{s["num_images"]} images after {s["num_warmup"]} warm-up; median '
        f'(10th-90th percentile). FPS = 1000 / mean latency. All models are '
        f'timed round-robin on the same images, so drift of the machine '
        f'affects them alike.',
        '- Floor: data preprocessor + backbone + neck on the same images; '
        'Head = Latency - Floor (medians): head and post-processing.',
        f'- Train step: forward + backward + update of one batch (size in '
        f'comparison.json), median after {s["step_warmup"]} warm-up steps.',
        '- FLOPs: mmengine get_model_complexity_info of the tensor-mode '
        'forward (no post-processing) at the padded test size, as '
        'get_flops.py; one multiply-add counts as one FLOP, and ops it '
        'cannot count (normalisation, interpolation) count as 0.',
        '- Peak memory: increase over the level before the phase (CPU: '
        'resident set of the main process; CUDA: allocated tensors).', '',
        '| ' + ' | '.join(COLUMNS) + ' |',
        '|' + '|'.join([':---'] + ['---:'] * (len(COLUMNS) - 1)) + '|'
    ]
    lines += ['| ' + ' | '.join(table_row(r)) + ' |' for r in models]
    notes = [(r['name'], k, v) for r in models for k, v in r['notes'].items()]
    if notes:
        lines += ['', 'Notes:', '']
        lines += [f'- {name}, {key}: {text}' for name, key, text in notes]
    return '\n'.join(lines) + '\n'


def plot(report: dict, path: str) -> None:
    """``comparison.png``: mask AP against median latency, labelled."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    skipped = []
    for r in report['models']:
        if r['segm_mAP'] is None or r['latency'] is None:
            skipped.append(r['name'])
            continue
        lat = r['latency']
        x, y = lat['median_ms'], r['segm_mAP'] * 100
        ax.plot([r['floor_latency']['median_ms'], x], [y, y],
                ls=':',
                color='grey',
                marker='|')
        ax.errorbar(
            x,
            y,
            xerr=[[x - lat['p10_ms']], [lat['p90_ms'] - x]],
            fmt='o',
            capsize=3)
        ax.annotate(
            r['name'], (x, y),
            textcoords='offset points',
            xytext=(5, 5),
            fontsize=8)
    if skipped:
        ax.text(
            0.01,
            0.01,
            'no mask AP or latency: ' + ', '.join(skipped),
            transform=ax.transAxes,
            fontsize=7)
    settings = report['settings']
    ax.set_xlabel(f'latency per image on {settings["device"]}, batch 1 '
                  '(ms; median, bars 10th-90th percentile)')
    ax.set_ylabel('mask AP (%)')
    ax.set_title(
        'Mask AP vs latency (dotted: from the backbone+neck floor)',
        fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict, work_dir: str) -> dict:
    """Write the three files; returns their paths."""
    paths = {
        ext: osp.join(work_dir, f'comparison.{ext}')
        for ext in ('md', 'json', 'png')
    }
    with open(paths['json'], 'w') as f:
        json.dump(report, f, indent=2)
    with open(paths['md'], 'w') as f:
        f.write(markdown(report))
    plot(report, paths['png'])
    return paths
