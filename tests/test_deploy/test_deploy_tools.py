"""tools/deploy/: export_onnx.py, ort_infer.py and evaluate_onnx.py end to
end, and their answers to bad input (issue #40, item 6)."""
import json
import sys

import numpy as np
import pytest
import torch

from deploy_testing import TINY_CONFIG, VIDEO_CONFIG
from pep_testing import load_tool


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """The tiny PEP config (initial weights; its score_thr 0 keeps
    detections coming) exported with a dynamic input size."""
    out = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    load_tool('deploy/export_onnx').main(
        [TINY_CONFIG, '--out', out, '--dynamic'])
    return out


def _images(folder, sizes=((64, 64), (48, 80))):
    import cv2
    rng = np.random.RandomState(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f'img{i}.png'),
                    (rng.rand(h, w, 3) * 255).astype(np.uint8))


def test_export_then_infer_writes_detinferencer_outputs(exported, tmp_path):
    """ort_infer.py on a folder: a picture and a JSON per image, in
    DetInferencer's format (RLE masks), from the config stored in the
    graph."""
    images = tmp_path / 'images'
    images.mkdir()
    _images(images)
    out = tmp_path / 'out'
    load_tool('deploy/ort_infer').main(
        [exported, str(images), '--out-dir', str(out)])
    for name in ('img0', 'img1'):
        assert (out / 'vis' / f'{name}.png').is_file()
        with open(out / 'preds' / f'{name}.json') as f:
            pred = json.load(f)
        assert set(pred) == {'labels', 'scores', 'bboxes', 'masks'}
        assert len(pred['labels']) == len(pred['scores']) == len(
            pred['bboxes']) == len(pred['masks']) > 0
        assert set(pred['masks'][0]) == {'size', 'counts'}
    # The masks come back at the original size of the non-square image.
    with open(out / 'preds' / 'img1.json') as f:
        assert json.load(f)['masks'][0]['size'] == [48, 80]


def test_runner_rejects_bad_images(exported, tmp_path):
    from mmdet_pep.deploy import build_deploy_model, export_onnx
    from mmdet_pep.deploy.inferencer import OrtDetector
    session = OrtDetector(exported)
    with pytest.raises(TypeError, match='uint8 or float32.*float64'):
        session(np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match='3 channels, got 4'):
        session(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError, match='at least 32 px'):
        session(np.zeros((16, 64, 3), np.uint8))
    fixed = export_onnx(
        build_deploy_model(TINY_CONFIG), str(tmp_path / 'fixed.onnx'),
        (64, 64))
    with pytest.raises(ValueError, match='exported for 64x64.*got 64x96'):
        OrtDetector(fixed)(np.zeros((64, 96, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match='ONNX file not found'):
        OrtDetector(str(tmp_path / 'missing.onnx'))


def test_export_of_a_video_model_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool('deploy/export_onnx').main(
            [VIDEO_CONFIG, '--out', str(tmp_path / 'x.onnx')])
    message = str(exit_info.value)
    assert 'SipMaskVIS is a video model' in message
    assert '\n' not in message
    assert not (tmp_path / 'x.onnx').exists()


def test_missing_onnxruntime_says_how_to_install(monkeypatch):
    from mmdet_pep.deploy import inferencer
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match='requirements/deploy.txt'):
        inferencer.OrtDetector('whatever.onnx')


def test_evaluate_onnx_writes_parity_and_latency(tmp_path):
    """evaluate_onnx.py on a 4-image tiny set: both backends' metrics from
    the same evaluator, per-image instance counts and latencies at two
    sizes, in one result file."""
    from mmdet_pep.datasets.synthetic import generate_dataset
    from mmdet_pep.deploy import build_deploy_model
    root = tmp_path / 'data'
    generate_dataset(str(root), num_train=1, num_val=4, num_test=1,
                     image_size=64)
    deploy = build_deploy_model(TINY_CONFIG)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=deploy.detector.state_dict()), ckpt)
    out = tmp_path / 'results'
    load_tool('deploy/evaluate_onnx').main([
        TINY_CONFIG, ckpt, '--name', 'tiny', '--data-root', f'{root}/',
        '--out-dir', str(out), '--work-dir', str(tmp_path / 'onnx'),
        '--threads', '1', '--num-timed', '2', '--num-timed-large', '1',
        '--large-shape', '96', '128'
    ])
    with open(out / 'tiny.json') as f:
        result = json.load(f)
    assert result['num_images'] == 4
    assert result['images_same_count'] == 4
    assert result['worst_mask_iou'] >= 0.99
    assert result['mask_ap_diff'] <= 0.1
    # PEP's grouping iterations converged on every image.
    assert result['images_capped'] == 0
    assert set(result['latency']) == {'64x64', '96x128'}
    for timing in result['latency'].values():
        assert timing['pytorch']['median_ms'] > 0
        assert timing['onnxruntime']['median_ms'] > 0
