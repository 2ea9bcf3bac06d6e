"""The videos of a ``beenet predict --out`` folder: from its summary, else from the tables found,
each entry checked to stay inside the folder (links resolved), and where each input video is.

An entry of the summary whose outputs lead out of the folder (``../x.csv``, an absolute path, a
link to elsewhere) is refused whole, with the entry named; the other videos are still found.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beenet.view.reading import Roots, ViewInputError, read_summary, summary_entry

SUMMARY = "predict_summary.json"
#: The summary each rank writes under torchrun (``beenet.cli.predict.summary_name``).
RANK_SUMMARY = re.compile(r"predict_summary\.rank(\d+)-of-(\d+)\.json")
TABLE_SUFFIXES = (".csv", ".json", ".parquet")
#: Suffixes of videos (for the hint to name a video's folder).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@dataclass
class VideoEntry:
    stem: str
    table_path: Path
    video: Path | None
    extra: dict[str, Any] = field(default_factory=dict)


def latest_summaries(out: Path) -> list[Path]:
    """The summaries of the latest ``beenet predict`` into ``out``: ``predict_summary.json``, or
    under torchrun one ``predict_summary.rank<R>-of-<W>.json`` per rank. Files of an earlier run
    with another number of processes are left out (the group whose newest file is newest wins)."""
    groups: dict[str, list[Path]] = {}
    if (out / SUMMARY).is_file():
        groups["one process"] = [out / SUMMARY]
    for p in sorted(out.glob("predict_summary.rank*-of-*.json")):
        m = RANK_SUMMARY.fullmatch(p.name)
        if m and p.is_file():
            groups.setdefault(f"{m.group(2)} processes", []).append(p)
    if not groups:
        return []
    return max(groups.values(), key=lambda ps: max(p.stat().st_mtime_ns for p in ps))


def _relative(o: str) -> str | None:
    """``o`` as a clean relative POSIX path, None when it is absolute or climbs out (``..``)."""
    if not o or os.path.isabs(o) or o.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", o):
        return None
    norm = os.path.normpath(o).replace(os.sep, "/")
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


def _summary_video(roots: Roots, summary: Path, i: int, v: Any) -> VideoEntry | None:
    """The entry ``videos[i]`` of a summary, None when its table is not there (any more)."""
    out = roots.out
    outputs, video = summary_entry(summary, i, v)
    name = f"videos[{i}] ({video})" if video else f"videos[{i}]"
    for o in outputs:
        rel = _relative(o)
        if rel is None or ((out / rel).exists() and not roots.inside(out / rel)):
            raise ViewInputError(f"{summary}: {name}: output {o!r} lies outside {out}; refused")
    tables = [_relative(o) for o in outputs if o.endswith(TABLE_SUFFIXES) and not o.endswith("_frames.csv")]
    tables = [t for t in tables if t is not None and (out / t).is_file()]
    if not tables:
        return None
    tables.sort(key=lambda o: TABLE_SUFFIXES.index(Path(o).suffix))
    stem = tables[0][: -len(Path(tables[0]).suffix)]
    return VideoEntry(stem, out / tables[0], Path(video) if video else None, v)


def find_videos(out: Path, problems: list[str] | None = None,
                roots: Roots | None = None) -> tuple[list[VideoEntry], list[dict[str, Any]]]:
    """The videos of a results folder (from ``predict_summary.json``, else the tables found) and
    the failures the summary lists. A summary, entry or table that is refused adds a line to
    ``problems`` (a list of the caller's) and is left out."""
    roots = roots or Roots.of(out)
    problems = [] if problems is None else problems
    entries: dict[str, VideoEntry] = {}
    failures: list[dict[str, Any]] = []
    named: set[str] = set()  # outputs the summaries name (a refused one is reported once)
    for summary in latest_summaries(out):
        try:
            roots.checked(summary, "the predict summary")
            doc = read_summary(summary)
        except ViewInputError as exc:
            problems.append(str(exc))
            continue
        failures += [{"input": str(f.get("input")), "error": str(f.get("error"))}
                     for f in doc.get("failures", []) if isinstance(f, dict)]
        for i, v in enumerate(doc.get("videos", [])):
            named |= {o for o in (v.get("outputs") or []) if isinstance(o, str)} if isinstance(v, dict) else set()
            try:
                e = _summary_video(roots, summary, i, v)
            except ViewInputError as exc:
                problems.append(str(exc))
                continue
            if e is not None:
                entries[e.stem] = e
    for suffix in TABLE_SUFFIXES:
        for p in sorted(out.rglob(f"*{suffix}")):
            rel = p.relative_to(out).as_posix()
            stem = rel[: -len(suffix)]
            if (stem in entries or rel.endswith(("_frames.csv", ".meta.json")) or rel == SUMMARY
                    or RANK_SUMMARY.fullmatch(rel)
                    or p.name.startswith(".") or "/." in rel or stem.endswith(".view")):
                continue
            if not roots.inside(p):
                if p.is_symlink() and rel not in named:
                    problems.append(f"{p}: a link out of {out} (to {os.path.realpath(p)}); refused")
                continue
            if (suffix == ".json" and not _is_table_json(p)) or (suffix == ".csv" and not _is_table_csv(p)):
                continue  # some other file (metrics.csv, a config): not a predict table
            entries[stem] = VideoEntry(stem, p, None)
    return sorted(entries.values(), key=lambda e: e.stem), failures


def _is_table_csv(p: Path) -> bool:
    try:
        with p.open(encoding="utf-8") as fh:
            header = fh.readline(64 * 1024).strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    return {"person_id", "start_frame", "end_frame", "valence"} <= set(header)


def _is_table_json(p: Path) -> bool:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "rows" in doc and "columns" in doc


def locate_video(roots: Roots, entry: VideoEntry, meta: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The input video of ``entry`` (the summary's, else the table's ``video`` name in the folder or
    beside it) when it lies in the folder or a video folder the user named, and a note when a video
    was found but refused (it lies elsewhere)."""
    out = roots.out
    name = meta.get("video")
    cands = ([entry.video] if entry.video is not None else []) + ([out / name, out.parent / name] if name else [])
    refused = None
    for cand in cands:
        try:
            if not cand.is_file():
                continue
        except OSError:
            continue
        if roots.video_allowed(cand):
            return cand, None
        refused = refused or cand
    if refused is None:
        return None, None
    hint = (f" (name its folder: beenet view {out} --videos {refused.parent})"
            if refused.suffix.lower() in VIDEO_SUFFIXES else "")
    return None, f"the input video {refused} lies outside {out} and the video folders named; not shown{hint}"
