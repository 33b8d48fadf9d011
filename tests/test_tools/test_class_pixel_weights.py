"""tools/analysis_tools/class_pixel_weights.py: ENet weights from the pixel
shares of a hand-made COCO json, and clear errors for bad fields."""
import json
import math
import os.path as osp
import sys

import pytest

from pep_testing import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
import class_pixel_weights as tool  # noqa: E402


def coco(**changes):
    data = dict(
        images=[dict(id=1, height=10, width=10),
                dict(id=2, height=10, width=30)],
        categories=[dict(id=7, name='car'), dict(id=3, name='bus')],
        annotations=[
            dict(id=1, image_id=1, category_id=7, area=20, iscrowd=0),
            dict(id=2, image_id=2, category_id=7, area=20, iscrowd=0),
            dict(id=3, image_id=2, category_id=3, area=100, iscrowd=1),
        ])
    data.update(changes)
    return data


def test_pixel_fractions_in_category_order_without_crowds():
    # 400 pixels; car 40 of them; the bus's only instance is a crowd.
    assert tool.pixel_fractions(coco()) == {'car': 0.1, 'bus': 0.}


def test_main_prints_and_writes_the_weights(tmp_path, capsys):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(coco()))
    out = tmp_path / 'w.json'
    assert tool.main([str(ann), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'foreground_weight=[8.82,50.50]' in printed
    assert 'average_per_class=True' in printed
    written = json.loads(out.read_text())
    assert written['classes'] == ['car', 'bus']
    assert written['foreground_weight'] == pytest.approx(
        [1 / math.log(1.12), 1 / math.log(1.02)])


@pytest.mark.parametrize('changes, field', [
    (dict(images=None), '"images"'),
    (dict(images=[dict(id=1, height=0, width=5)]), '"height"'),
    (dict(annotations=[dict(id=9, image_id=1, category_id=5, area=1)]),
     '"category_id"'),
    (dict(annotations=[dict(id=9, image_id=4, category_id=7, area=1)]),
     '"image_id"'),
    (dict(annotations=[dict(id=9, image_id=1, category_id=7)]), '"area"'),
])
def test_bad_fields_are_named(changes, field):
    with pytest.raises(ValueError, match=field) as err:
        tool.pixel_fractions(coco(**changes), 'bad.json')
    assert 'bad.json' in str(err.value)
