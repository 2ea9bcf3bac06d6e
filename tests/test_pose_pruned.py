"""The pruned landmark model kept on disk (``beenet.inference.pose.pruned``): pruned once, read back
the same on later starts, pruned again when the model, the outputs or the pruning change or the
kept file is damaged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beenet.inference.pose import blazepose as bp
from beenet.inference.pose.pruned import cache_key, kept_pruned

needs_litert = pytest.mark.usefixtures("blazepose_models")


@pytest.fixture
def landmark_model(blazepose_models) -> bytes:
    return Path(blazepose_models["pose_landmarks_detector.tflite"]).read_bytes()


def test_pruned_once_then_read_back_the_same(tmp_path, landmark_model):
    calls = []

    def prune(data: bytes, outputs: tuple[str, ...]) -> bytes:
        calls.append(outputs)
        return bp.pruned_model(data, outputs)

    first = kept_pruned(landmark_model, bp.LANDMARK_OUTPUTS, prune, tmp_path)
    again = kept_pruned(landmark_model, bp.LANDMARK_OUTPUTS, prune, tmp_path)
    assert first == again == bp.pruned_model(landmark_model, bp.LANDMARK_OUTPUTS)
    assert len(calls) == 1 and len(list(tmp_path.glob("*.tflite"))) == 1
    # other outputs are another model
    kept_pruned(landmark_model, ("Identity",), prune, tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.tflite"))) == 2


def test_a_damaged_kept_file_is_pruned_again_and_replaced(tmp_path, landmark_model):
    good = kept_pruned(landmark_model, bp.LANDMARK_OUTPUTS, bp.pruned_model, tmp_path)
    (kept,) = tmp_path.glob("*.tflite")
    kept.write_bytes(good[:1000])  # cut short
    assert kept_pruned(landmark_model, bp.LANDMARK_OUTPUTS, bp.pruned_model, tmp_path) == good
    assert kept.read_bytes() == good


def test_a_cache_that_cannot_be_written_still_gives_the_pruned_model(tmp_path, landmark_model):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = kept_pruned(landmark_model, bp.LANDMARK_OUTPUTS, bp.pruned_model, blocker / "pruned")
    assert out == bp.pruned_model(landmark_model, bp.LANDMARK_OUTPUTS)


def test_the_key_follows_the_model_the_outputs_and_the_pruning_code():
    def prune_a(data: bytes, outputs: tuple[str, ...]) -> bytes:
        return data[:10]

    def prune_b(data: bytes, outputs: tuple[str, ...]) -> bytes:
        return data[:11]

    key = cache_key(b"model", ("a",), prune_a)
    assert key == cache_key(b"model", ("a",), prune_a)
    assert len({key, cache_key(b"model2", ("a",), prune_a), cache_key(b"model", ("a", "b"), prune_a),
                cache_key(b"model", ("a",), prune_b)}) == 4


@needs_litert
def test_a_fresh_process_reads_the_kept_model_without_the_flatbuffers_schema(tmp_path, blazepose_models):
    """The start-up this saves: a second process builds the landmark interpreter from the kept
    file, without importing the schema (the first one pruned it)."""
    probe = ("import sys\n"
             "from pathlib import Path\n"
             "from beenet.inference.pose.blazepose import BlazePose\n"
             "from beenet.inference.pose.models import find_model_files\n"
             "BlazePose(find_model_files(sys.argv[1]))\n"
             "print('ai_edge_litert.schema_py_generated' in sys.modules)\n")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "BEENET_CACHE": str(tmp_path / "cache")}
    models = str(Path(blazepose_models["pose_detector.tflite"]).parent)
    runs = [subprocess.run([sys.executable, "-c", probe, models], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["True", "False"], [r.stderr[-1000:] for r in runs]
    assert len(list((tmp_path / "cache" / "models" / "pruned").glob("*.tflite"))) == 1
