"""The person detector's graph converted to ONNX (``beenet.inference.pose.converted``): converted
once and read back on later starts, converted again when the kept file is damaged, and refused
when onnxruntime's outputs differ from the graph's."""

from __future__ import annotations

import numpy as np
import pytest

from beenet.inference.pose import converted
from beenet.inference.pose.converted import ConversionError, converted_graph

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def centernet(blazepose_models):
    from beenet.inference.pose.models import find_detector_files

    return find_detector_files()


def _args():
    from beenet.inference.pose.detector import CLASS_HEAD, HEATMAP, PERSON, SIZES

    return [HEATMAP, SIZES], (CLASS_HEAD, PERSON)


def test_converted_once_then_read_back(tmp_path, centernet, monkeypatch):
    outputs, keep = _args()
    first = converted_graph(centernet, outputs, keep, folder=tmp_path)
    (kept,) = tmp_path.glob("*.onnx")
    calls = []
    monkeypatch.setattr(converted, "export_onnx", lambda *a: calls.append(a) or b"")
    again = converted_graph(centernet, outputs, keep, folder=tmp_path)
    assert calls == [] and list(tmp_path.glob("*.onnx")) == [kept]
    image = np.random.default_rng(0).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    for a, b in zip(first.run(image), again.run(image)):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert [o.shape for o in first.run(image)] == [(1, 16, 24, 1), (1, 16, 24, 4)]


def test_a_damaged_kept_file_is_converted_again(tmp_path, centernet):
    outputs, keep = _args()
    converted_graph(centernet, outputs, keep, folder=tmp_path)
    (kept,) = tmp_path.glob("*.onnx")
    good = kept.read_bytes()
    kept.write_bytes(good[:5000])  # cut short
    converted_graph(centernet, outputs, keep, folder=tmp_path)
    assert kept.read_bytes() == good


def test_a_conversion_that_computes_something_else_is_refused(tmp_path, centernet, monkeypatch):
    outputs, keep = _args()
    real_run = converted.OnnxGraph.run
    monkeypatch.setattr(converted.OnnxGraph, "run", lambda self, image: [o + 0.01 for o in real_run(self, image)])
    with pytest.raises(ConversionError, match="differs from the graph's.*person_engine=torch"):
        converted_graph(centernet, outputs, keep, folder=tmp_path)
    assert list(tmp_path.glob("*.onnx")) == []  # nothing kept
