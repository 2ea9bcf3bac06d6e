"""What ``beenet predict`` and :meth:`Predictor.predict` accept as input, turned into videos.

An input is a video file; a folder (every video under it, recursively, sorted; the ``video``
column is then the path relative to the folder); a BoLD joints ``X.npy`` (its video is ``X.mp4``
beside it, or ``videos/...`` for ``joints/...`` in the BoLD layout); or a folder of OpenPose
``*_keypoints.json`` (its video is ``<folder>.mp4`` beside it, or the one video inside it).
:func:`resolve_inputs` turns a list of them into :class:`Job` s, one per video, each with an
output stem that no other job shares. An input that cannot become a video is a job with an
``error``, so a caller can report it and go on with the others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: File suffixes taken for videos (case-insensitive).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass
class Job:
    """One video to process (or an input that could not become one: ``error``)."""

    source: str
    video: Path | None = None
    keypoints: Path | None = None
    name: str = ""
    stem: str = ""
    error: str | None = None


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


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Job]:
    """Turn inputs (the INPUT arguments, or what :meth:`Predictor.predict` was given) into jobs
    (video + optional keypoints), one per video, in input order."""
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
                jobs.append(Job(raw, video, path, video.name))
        elif path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                            and not p.name.endswith("_annotated.mp4"))
            if not videos:
                jobs.append(Job(raw, error=f"{path}: no video files ({', '.join(VIDEO_SUFFIXES)}) under this folder"))
            for v in videos:
                jobs.append(Job(str(v), v, None, v.relative_to(path).as_posix()))
        elif path.suffix.lower() == ".npy":
            video = find_video_for(path)
            if video is None:
                jobs.append(Job(raw, error=f"{path}: joints file without its video; expected {path.with_suffix('.mp4')} "
                                           "(or the BoLD layout joints/... -> videos/...)"))
            else:
                jobs.append(Job(raw, video, path, video.name))
        else:
            jobs.append(Job(raw, path, None, path.name))
    _assign_stems(jobs)
    return jobs


def _assign_stems(jobs: list[Job]) -> None:
    """Output names: the video's stem, made longer with its folders where two would collide."""
    live = [j for j in jobs if j.video is not None]
    for j in live:
        j.stem = j.video.stem
    depth = 1
    while True:
        seen: dict[str, list[Job]] = {}
        for j in live:
            seen.setdefault(j.stem, []).append(j)
        clashes = [g for g in seen.values() if len(g) > 1]
        if not clashes or depth > 8:
            break
        for group in clashes:
            for j in group:
                parts = j.video.resolve().with_suffix("").parts[-(depth + 1):]
                j.stem = "_".join(p.replace(".", "-") for p in parts)
        depth += 1
