"""Scene 1 of tests/crowd_testing.py as a fixture of the metric tests."""
import pytest

from crowd_testing import write_scene1


@pytest.fixture
def scene1(tmp_path):
    return write_scene1(str(tmp_path / 'scene1.json'))
