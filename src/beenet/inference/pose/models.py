"""BlazePose's two model files: finding them, installing them out of a mediapipe wheel, keying
them, and packing them into the ``.task`` bundle mediapipe's Tasks API loads.

mediapipe 0.10.21 ships the BlazePose person detector and the full landmark model as bare tflite
files (``mediapipe/modules/pose_detection/pose_detection.tflite``,
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite``). The Tasks ``PoseLandmarker``, which
finds several people per frame (``num_poses``), refuses them as they are: its image input needs
normalisation metadata. :func:`build_bundle` adds it with mediapipe's own metadata writer
(detector: ``(pixel - 127.5) / 127.5``, i.e. [-1, 1]; landmarks: ``pixel / 255``, i.e. [0, 1]) and
packs both into one ``.task`` bundle, built once into the beenet cache under a name keyed by the
two files' SHA-256, and written atomically.

Newer mediapipe releases (a py3-none wheel that installs on Python 3.13) have the Tasks API but
no tflite files; ``scripts/install-pose.sh`` then extracts the two files from the 0.10.21 wheel
into ``<cache>/mediapipe-models/`` (``python -m beenet.inference.pose install-models WHEEL``),
where :func:`find_model_files` looks after the package. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import types
import zipfile
from pathlib import Path

from beenet import paths
from beenet.atomic import atomic_path
from beenet.errors import BeenetError
from beenet.inference.pose.runtime import INSTALL_HINT

log = logging.getLogger(__name__)

#: bundle member name -> (path inside the mediapipe package, norm mean, norm std, number of outputs).
MODEL_FILES: dict[str, tuple[str, float, float, int]] = {
    "pose_detector.tflite": ("modules/pose_detection/pose_detection.tflite", 127.5, 127.5, 2),
    "pose_landmarks_detector.tflite": ("modules/pose_landmark/pose_landmark_full.tflite", 0.0, 255.0, 5),
}
#: Folder (under the beenet cache root) where ``scripts/install-pose.sh`` puts the tflite files.
MODELS_SUBDIR = paths.CACHE_KINDS["pose-models"]
#: Folder (under the beenet cache root) of the built ``.task`` bundles.
BUNDLE_SUBDIR = "pose"


def _mediapipe_dir() -> Path | None:
    try:
        import mediapipe  # lazy: optional and slow to import; only to find the files it ships
    except ImportError:
        return None
    return Path(mediapipe.__file__).parent


def missing_models_message(where: list[Path]) -> str:
    looked = ", ".join(str(p) for p in where) or "(mediapipe is not installed)"
    return (
        "the 'mediapipe' pose backend needs mediapipe's BlazePose models (pose_detection.tflite, "
        f"pose_landmark_full.tflite); looked in {looked}. Install them with: {INSTALL_HINT}. "
        "'pip install mediapipe' alone installs a release without them. Or use --pose rcnn (downloads "
        "Keypoint R-CNN weights once)."
    )


def find_model_files(root: str | Path | None = None) -> dict[str, Path]:
    """The two tflite files, by bundle member name: from the installed mediapipe package when it
    ships them (0.10.21), else from ``<root>/mediapipe-models/``. ``root=None``: beenet's cache
    (:func:`beenet.paths.cache_root`), then the default ``~/.cache/beenet`` (where
    ``scripts/install-pose.sh`` put them when ``$BEENET_CACHE`` was not set, e.g. before a run
    that sets it).

    Raises :class:`BeenetError` with the install command when no place has both.
    """
    roots = [Path(root).expanduser()] if root is not None else [paths.cache_root(), Path.home() / ".cache" / "beenet"]
    places: list[Path] = []
    mp_dir = _mediapipe_dir()
    if mp_dir is not None:
        places.append(mp_dir)
    for r in roots:
        if r / MODELS_SUBDIR not in places:
            places.append(r / MODELS_SUBDIR)
    for place in places:
        files = {}
        for member, (rel, *_rest) in MODEL_FILES.items():
            # In the package the files keep their folders; in the cache they lie flat.
            p = place / rel if place == mp_dir else place / Path(rel).name
            if p.is_file():
                files[member] = p
        if len(files) == len(MODEL_FILES):
            return files
    raise BeenetError(missing_models_message([p for p in places]))


def models_key(files: dict[str, Path]) -> str:
    """16 hex digits of the SHA-256 over both model files: names the bundle built from them, and
    is recorded in a table's settings."""
    from beenet.weights import file_sha256  # lazy: beenet.weights imports torch

    key = hashlib.sha256("".join(f"{m}:{file_sha256(Path(files[m]))};" for m in sorted(MODEL_FILES)).encode())
    return key.hexdigest()[:16]


def _metadata_writer():
    """mediapipe's ``metadata_writer`` module. Releases after 0.10.21 (the py3-none wheels that
    install on Python 3.13) dropped the compiled ``_pywrap_metadata_version`` that its import
    needs, though nothing else of it; for them a stand-in answers what 0.10.21 answers for the
    metadata written here (minimum parser version ``1.0.0``: image input, normalisation, feature
    outputs), so the bundle comes out byte for byte the same."""
    try:
        from mediapipe.tasks.cc.metadata.python import _pywrap_metadata_version  # noqa: F401  # lazy: optional mediapipe
    except ImportError:
        stub = types.ModuleType("mediapipe.tasks.cc.metadata.python._pywrap_metadata_version")
        stub.GetMinimumMetadataParserVersion = lambda buf: "1.0.0"  # type: ignore[attr-defined]
        for name in ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", "mediapipe.tasks.cc.metadata.python"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules[stub.__name__] = stub
        sys.modules["mediapipe.tasks.cc.metadata.python"]._pywrap_metadata_version = stub  # type: ignore[attr-defined]
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer  # lazy: optional mediapipe

    return metadata_writer


def install_models_from_wheel(wheel: str | Path, root: str | Path | None = None) -> Path:
    """Copy the two tflite files out of a mediapipe wheel (0.10.21 ships them) into
    ``<root>/mediapipe-models/`` (``root``: :func:`beenet.paths.cache_root`), each written
    atomically; returns that folder. ``scripts/install-pose.sh`` runs this on Python >= 3.13."""
    root = paths.cache_root() if root is None else Path(root).expanduser()
    dest = root / MODELS_SUBDIR
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BeenetError(f"{wheel}: not a readable mediapipe wheel ({exc})") from exc
    with zf:
        names = set(zf.namelist())
        for rel, *_rest in MODEL_FILES.values():
            member = f"mediapipe/{rel}"
            if member not in names:
                raise BeenetError(f"{wheel}: has no {member}; use the mediapipe 0.10.21 wheel")
            with atomic_path(dest / Path(rel).name) as tmp:
                tmp.write_bytes(zf.read(member))
    find_model_files(root)  # both are there now
    return dest


def _valid_bundle(path: Path) -> bool:
    """Whether ``path`` is a bundle of both model files (a corrupt one is logged)."""
    if not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as z:
            if sorted(z.namelist()) == sorted(MODEL_FILES):
                return True
    except zipfile.BadZipFile:
        pass
    log.warning("%s is not a valid pose bundle; building it again", path)
    return False


def _with_metadata(src: Path, mean: float, std: float, n_out: int) -> bytes:
    """The tflite model ``src`` with normalisation metadata on its image input, or BeenetError
    naming the file when it is not a valid model."""
    metadata_writer = _metadata_writer()
    try:
        writer = metadata_writer.MetadataWriter.create(bytearray(src.read_bytes()))
        writer.add_image_input(norm_mean=[mean], norm_std=[std])
        for _ in range(n_out):
            writer.add_feature_output()
        return writer.populate()[0]
    except Exception as exc:  # the flatbuffer reader raises assorted errors on a bad file
        raise BeenetError(
            f"{src}: not a valid mediapipe pose model ({type(exc).__name__}: {exc}); delete it and "
            f"reinstall with: {INSTALL_HINT}"
        ) from exc


def build_bundle(files: dict[str, Path] | None = None, root: str | Path | None = None) -> Path:
    """The ``.task`` bundle of the two tflite files (with normalisation metadata), built once.

    It lives in ``<root>/pose/pose_landmarker-<sha>.task`` where ``<sha>`` hashes both files, so a
    new mediapipe model gives a new bundle; it is written to a temp file and renamed, so a crash
    never leaves a half bundle. A file that is not a valid tflite model raises :class:`BeenetError`
    naming it.
    """
    files = find_model_files(root) if files is None else files
    root = paths.cache_root() if root is None else Path(root).expanduser()
    out = root / BUNDLE_SUBDIR / f"pose_landmarker-{models_key(files)}.task"
    if _valid_bundle(out):
        return out
    members = {member: _with_metadata(Path(files[member]), mean, std, n_out)
               for member, (_rel, mean, std, n_out) in MODEL_FILES.items()}
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils  # lazy: optional mediapipe

    with atomic_path(out) as tmp:  # aligned zip members, as mediapipe's own bundles
        model_asset_bundle_utils.create_model_asset_bundle(members, str(tmp))
    return out
