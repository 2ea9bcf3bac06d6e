"""What ``beenet predict`` and :meth:`Predictor.predict` accept as input, turned into videos.

An input is a video file; a folder (every video under it, recursively, sorted; the ``video``
column is then the path relative to the folder); a BoLD joints ``X.npy`` (its video is ``X.mp4``
beside it, or ``videos/...`` for ``joints/...`` in the BoLD layout); or a folder of OpenPose
``*_keypoints.json`` (its video is ``<folder>.mp4`` beside it, or the one video inside it).
:func:`resolve_inputs` turns a list of them into :class:`Job` s, one per video. An input that
cannot become a video is a job with an ``error``, so a caller can report it and go on.

Output names (``Job.stem``) come from the video's path relative to its input root (the folder
given, or the video's own folder for a file), never from the path above the root: ``clips/a/x.mp4``
given as ``clips`` is ``a/x``, given as itself ``x``. Two jobs that would write the same file get
``_2``, ``_3``, ... (``clip.mp4`` and ``clip.mov``; ``x.mp4`` from two folders). The same video
given twice (the same file, a hard link or a symbolic link to it, with the same keypoints) is
done once: the repeats are jobs with ``duplicate_of`` set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: File suffixes taken for videos (case-insensitive).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
#: Still images: refused with a message (predictions are per time window of a video).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def still_image_error(path: Path) -> str:
    return (f"{path}: a still image; beenet predict scores people over time windows of a video and "
            f"does not take images. Make a video of it if you want one window, e.g. "
            f"ffmpeg -loop 1 -i {path.name} -t 4 -r 25 -pix_fmt yuv420p {path.stem}.mp4")


def bold_key(joints: Path) -> PurePosixPath | None:
    """The BoLD key of a joints file in the BoLD layout, ``<dir>/<video>.mp4/<clip>.mp4`` (as in
    BoLD's annotation CSVs) for ``.../joints/<dir>/<video>.mp4/<clip>.npy``; None elsewhere."""
    parts = list(joints.parts)
    if "joints" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("joints")
    rest = parts[i + 1:]
    if not rest:
        return None
    rest[-1] = PurePosixPath(rest[-1]).with_suffix(".mp4").name
    return PurePosixPath(*rest)


@dataclass
class Job:
    """One video to process (or an input that could not become one: ``error``)."""

    source: str
    video: Path | None = None
    keypoints: Path | None = None
    name: str = ""
    stem: str = ""
    error: str | None = None
    #: The video's path relative to its input root (the folder given, or the video's own folder).
    relative: PurePosixPath | None = None
    #: The earlier job that does the very same work (same video file, same keypoints), if any.
    duplicate_of: "Job | None" = None


def find_video_for(path: Path) -> Path | None:
    """The video a joints ``.npy`` or an OpenPose JSON folder belongs to, or None."""
    candidates: list[Path] = []
    if path.is_dir():
        candidates += [path.with_name(path.name + s) for s in VIDEO_SUFFIXES]
        inside = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        if len(inside) == 1:
            candidates.append(inside[0])
        names = sorted(path.glob("*_keypoints.json"))
        if names:
            prefix = names[0].name.rsplit("_", 2)[0]
            candidates += [path.parent / (prefix + s) for s in VIDEO_SUFFIXES]
            candidates += [path / (prefix + s) for s in VIDEO_SUFFIXES]
    else:
        candidates += [path.with_suffix(s) for s in VIDEO_SUFFIXES]
        parts = list(path.parts)
        if "joints" in parts:  # BoLD: joints/<rel>.npy -> videos/<rel>.mp4
            i = len(parts) - 1 - parts[::-1].index("joints")
            parts[i] = "videos"
            candidates.append(Path(*parts).with_suffix(".mp4"))
    for c in candidates:
        if c.is_file():
            return c
    return None


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]], outputs: Sequence[str] = ("",),
                   reserved: Sequence[str] = ()) -> list[Job]:
    """Turn inputs (the INPUT arguments, or what :meth:`Predictor.predict` was given) into jobs
    (video + optional keypoints), one per video, in input order.

    ``outputs``: the endings a caller appends to a stem to name its files (``.csv``,
    ``_timeline.png``, ...); stems are chosen so that no two jobs share a file, nor any name in
    ``reserved`` (``predict_summary.json``). See :func:`assign_stems`.
    """
    jobs: list[Job] = []
    for item in inputs:
        raw = str(item)
        path = Path(raw)
        if not path.exists():
            jobs.append(Job(raw, error=f"{path}: no such file or folder"))
        elif path.is_dir() and any(path.glob("*_keypoints.json")):
            video = find_video_for(path)
            if video is None:
                jobs.append(Job(raw, error=f"{path}: OpenPose JSON folder without its video; put {path.name}.mp4 "
                                           "beside the folder (or the video inside it)"))
            else:
                jobs.append(Job(raw, video, path, video.name, relative=PurePosixPath(video.name)))
        elif path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                            and not p.name.endswith("_annotated.mp4"))
            if not videos:
                jobs.append(Job(raw, error=f"{path}: no video files ({', '.join(VIDEO_SUFFIXES)}) under this folder"))
            for v in videos:
                rel = PurePosixPath(v.relative_to(path).as_posix())
                jobs.append(Job(str(v), v, None, rel.as_posix(), relative=rel))
        elif path.suffix.lower() == ".npy":
            video = find_video_for(path)
            if video is None:
                jobs.append(Job(raw, error=f"{path}: joints file without its video; expected {path.with_suffix('.mp4')} "
                                           "(or the BoLD layout joints/... -> videos/...)"))
            else:
                key = bold_key(path)  # BoLD layout: the video column keeps the BoLD key
                rel = key if key is not None else PurePosixPath(video.name)
                jobs.append(Job(raw, video, path, rel.as_posix(), relative=rel))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            jobs.append(Job(raw, error=still_image_error(path)))
        else:
            jobs.append(Job(raw, path, None, path.name, relative=PurePosixPath(path.name)))
    _mark_duplicates(jobs)
    assign_stems(jobs, outputs, reserved)
    return jobs


def shard(jobs: Sequence[Job], rank: int, world_size: int) -> list[Job]:
    """The jobs process ``rank`` of ``world_size`` runs (torchrun: ``RANK``, ``WORLD_SIZE``).

    The runnable jobs (no error, not a repeat) sorted by output stem are dealt round robin:
    rank r takes the r-th, (r + world_size)-th, ... so the shares are disjoint, their union is
    every runnable job, and no communication is needed. Errors and repeats go to rank 0 only (to
    be reported once). Input order is kept within a share."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}: need 0 <= rank < world size")
    runnable = sorted((j for j in jobs if j.error is None and j.duplicate_of is None), key=lambda j: j.stem)
    mine = {id(j) for j in runnable[rank::world_size]}
    return [j for j in jobs if id(j) in mine or (rank == 0 and id(j) not in {id(r) for r in runnable})]


def _identity(path: Path | None) -> tuple[int, int] | str | None:
    """What makes two paths the same file: (device, inode), else the resolved path."""
    if path is None:
        return None
    if isinstance(path, (str, os.PathLike)):
        try:
            st = os.stat(path)
            return (st.st_dev, st.st_ino)
        except OSError:
            return str(Path(path).resolve())
    return f"object:{id(path)}"


def _mark_duplicates(jobs: list[Job]) -> None:
    """Point each repeat of an earlier job (same video file and same keypoints) at that job."""
    first: dict[tuple[object, object], Job] = {}
    for j in jobs:
        if j.video is None:
            continue
        key = (_identity(j.video), _identity(j.keypoints))
        if key in first:
            j.duplicate_of = first[key]
        else:
            first[key] = j


def _clean_part(part: str) -> str:
    part = part.replace("\x00", "")
    return "_" if part in ("", ".", "..") else part


def assign_stems(jobs: Sequence[Job], outputs: Sequence[str] = ("",), reserved: Sequence[str] = ()) -> None:
    """Give every job that will run an output stem: its path relative to its input root without
    the suffix (``a/x`` for ``clips/a/x.mp4`` given as ``clips``), plus ``_2``, ``_3``, ... when
    one of the files ``stem + ending`` (for each ending in ``outputs``) is already taken by an
    earlier job or is in ``reserved``. Names are compared case-insensitively (macOS, Windows).
    Duplicates share their first job's stem."""
    taken = {r.casefold() for r in reserved}
    for j in jobs:
        if j.video is None:
            continue
        if j.duplicate_of is not None:
            j.stem = j.duplicate_of.stem
            continue
        rel = j.relative if j.relative is not None else PurePosixPath(j.video.name)
        parts = [_clean_part(p) for p in rel.parts]
        parts[-1] = _clean_part(PurePosixPath(parts[-1]).stem)
        base = "/".join(parts)
        n = 1
        while True:
            stem = base if n == 1 else f"{base}_{n}"
            names = {(stem + end).casefold() for end in outputs}
            if not names & taken:
                break
            n += 1
        taken |= names
        j.stem = stem
