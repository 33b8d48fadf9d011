"""tools/video_demo.py end to end on tiny clips: generates them, trains
SipMask-VIS for two iterations, prints YouTube-VIS AP and identity
switches, writes a strip and a GIF per drawn clip."""
import os.path as osp

from PIL import Image
from pep_testing import load_tool


def test_video_demo_trains_tests_and_draws(tmp_path, capsys):
    tool = load_tool('video_demo')
    work_dir = str(tmp_path / 'work')
    metrics, written = tool.main([
        '--work-dir', work_dir, '--data-root', str(tmp_path / 'data') + '/',
        '--max-iters', '2', '--num-train', '3', '--num-val', '2',
        '--num-test', '2', '--num-frames', '3', '--image-size', '64',
        '--num-drawn', '1',
        '--score-thr', '0', '--cfg-options',
        'model.detector.test_cfg.score_thr=0', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        # From scratch: no image model to train first.
        'load_from=None'
    ])
    assert 0 <= metrics['youtube_vis/segm_mAP'] <= 1
    assert metrics['youtube_vis/id_switches'] >= 0
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    strip, gif = written
    assert strip.endswith('.png') and gif.endswith('.gif')
    with Image.open(strip) as im:
        assert im.size == (3 * 64, 64)
    with Image.open(gif) as im:
        assert im.n_frames == 3
    out = capsys.readouterr().out
    assert 'YouTube-VIS mask AP' in out and 'identity switches' in out
