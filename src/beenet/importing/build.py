"""``beenet import``: your own labelled videos as a dataset in exactly BoLD's layout.

:func:`import_dataset` reads the labels file (:mod:`beenet.importing.labels_file`), runs pass 1 of
``beenet predict`` once per video (:func:`~beenet.importing.tracks.tracked_people`, cached), and
writes ``OUT/`` as the BoLD release is laid out (``docs/bold-format.md``):

* ``videos/000/<video>.mp4/<NNNN>.mp4``: one clip per labelled span of a source video (every
  person labelled over the same span shares the clip), the frames ``start..end`` re-encoded;
* ``joints/000/<video>.mp4/<NNNN>.npy``: ``(N, 56)`` OpenPose-18 rows of every person tracked in
  the clip, the frame numbers the source video's (absolute, as BoLD's);
* ``annotations/train.csv``, ``val.csv`` (37 columns, headerless: the categories are the mean over
  annotators, a soft score as BoLD's; VAD the mean), ``test_meta.csv`` (columns 0-3) and
  ``test_labels.csv`` (the test answers, 37 columns; not a BoLD file); the split is by source video,
  so no video is in two splits;
* ``beenet-import.json``: the manifest (every instance's source file, span, person id, split and
  annotators; the pose backend and tracker; the rows not imported and why).

A row that cannot be imported (bad cells, a video not given or unreadable, a span outside the
video, a person the tracker did not produce) is a :class:`~beenet.importing.labels_file.Problem`
naming its line; the others are imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beenet.atomic import write_json, write_text
from beenet.data.bold import IMPORT_MANIFEST
from beenet.errors import BeenetError, ConfigError, DataNotFoundError
from beenet.importing.labels_file import LabelRow, Problem, read_labels
from beenet.importing.tracks import Tracked, tracked_people
from beenet.inference.inputs import VIDEO_SUFFIXES
from beenet.inference.pose import PoseBackend
from beenet.inference.tracking_config import TrackingConfig
from beenet.media.video import VideoReader
from beenet.media.video_writer import VideoWriter
from beenet.version import __version__

MANIFEST = IMPORT_MANIFEST
#: The folder of BoLD's layout the clips go in (BoLD's own are 001, 002, 003, ...).
SHARD = "000"


@dataclass
class Instance:
    """One labelled (video, person, span), its annotators' labels averaged."""

    source: Path
    person_id: int
    start: int
    end: int
    rows: list[LabelRow]
    clip: str = ""
    split: str = ""

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        cats = np.mean([r.categories for r in self.rows], axis=0)
        vad = np.mean([r.vad for r in self.rows], axis=0)
        return cats, vad


@dataclass
class ImportReport:
    """What an import did: instances per split, the source videos of each split, the problems."""

    out: Path
    instances: list[Instance] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)
    clips: int = 0

    def count(self, split: str) -> int:
        return sum(1 for i in self.instances if i.split == split)

    def summary(self) -> str:
        parts = ", ".join(f"{s} {self.count(s)} ({len(self.splits.get(s, []))} videos)" for s in ("train", "val", "test"))
        text = (f"imported {len(self.instances)} instances in {self.clips} clips to {self.out}: {parts}; "
                f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}")
        return text + "".join(f"\n  {p}" for p in self.problems)


def find_videos(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """The videos given (files, or folders searched recursively), by every name a label row may
    use: the path relative to a given folder (``/`` separators), the path as given, the file name."""
    found: dict[str, Path] = {}
    names: dict[str, set[Path]] = defaultdict(set)
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            for v in videos:
                found.setdefault(v.relative_to(path).as_posix(), v)
                names[v.name].add(v)
        elif path.is_file():
            found.setdefault(str(item), path)
            names[path.name].add(path)
        else:
            raise DataNotFoundError(f"{path}: no such video or folder")
    for name, paths in names.items():
        if len(paths) == 1:
            found.setdefault(name, next(iter(paths)))
    return found


def draw_splits(videos: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Source videos into train / val / test, seeded: each fraction of the videos rounded, at least
    one video in val (and in test) when its fraction is above 0 and videos are left for training."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"--val-fraction {val_fraction} and --test-fraction {test_fraction} must be in [0, 1) "
                          "and leave some videos for training")
    order = [videos[i] for i in np.random.default_rng(seed).permutation(len(videos))]
    n = len(order)
    n_val = max(int(round(val_fraction * n)), int(val_fraction > 0 and n >= 2))
    n_test = max(int(round(test_fraction * n)), int(test_fraction > 0 and n >= 3))
    while n_val + n_test >= n and (n_val or n_test):
        if n_test:
            n_test -= 1
        else:
            n_val -= 1
    return {"val": sorted(order[:n_val]), "test": sorted(order[n_val:n_val + n_test]),
            "train": sorted(order[n_val + n_test:])}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: already exists and is not an empty folder; choose a new --out")


def _resolve(rows: list[LabelRow], videos: dict[str, Path], where: str,
             problems: list[Problem]) -> dict[Path, list[LabelRow]]:
    by_video: dict[Path, list[LabelRow]] = defaultdict(list)
    for row in rows:
        path = videos.get(row.video) or videos.get(row.video.replace("\\", "/"))
        if path is None:
            problems.append(Problem(f"{where}, line {row.line}",
                                    f"video {row.video!r} is not among the videos given"))
        else:
            by_video[path].append(row)
    return by_video


def _instances_of(source: Path, rows: list[LabelRow], tracked: Tracked, where: str,
                  problems: list[Problem]) -> list[Instance]:
    """The rows of one video checked against its tracked people, grouped into instances."""
    groups: dict[tuple[int, int, int], list[LabelRow]] = {}
    ids = tracked.person_ids
    for row in rows:
        here = f"{where}, line {row.line}"
        if row.plain:
            pid = tracked.longest()
            if pid is None:
                problems.append(Problem(here, f"nobody was found in {source.name} ({tracked.num_frames} frames)"))
                continue
            frames = tracked.frames_of(pid)
            start, end = int(frames[0]), int(frames[-1])
        else:
            pid, start, end = int(row.person_id), int(row.start), int(row.end)  # type: ignore[arg-type]
            if end >= tracked.num_frames:
                problems.append(Problem(here, f"the span {start}-{end} is outside {source.name}, which has "
                                              f"{tracked.num_frames} frames (0-{tracked.num_frames - 1})"))
                continue
            if pid not in ids:
                found = ", ".join(map(str, ids)) if ids else "nobody"
                problems.append(Problem(here, f"person {pid} is not among the people the tracker found in "
                                              f"{source.name} (person ids: {found}; pose "
                                              f"{tracked.settings['pose']['name']}, default tracking: the ids "
                                              "'beenet predict' gives with the same settings)"))
                continue
            frames = tracked.frames_of(pid)
            if not ((frames >= start) & (frames <= end)).any():
                problems.append(Problem(here, f"person {pid} is not tracked anywhere in frames {start}-{end} of "
                                              f"{source.name} (tracked in {frames[0]}-{frames[-1]})"))
                continue
        groups.setdefault((pid, start, end), []).append(row)
    return [Instance(source, pid, s, e, rs) for (pid, s, e), rs in sorted(groups.items())]


def _clip_name(source: Path, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem) or "video"
    name, k = f"{SHARD}/{stem}.mp4", 2
    while name in taken:
        name, k = f"{SHARD}/{stem}_{k}.mp4", k + 1
    taken.add(name)
    return name


def _write_clip(source: Path, start: int, end: int, fps: float, video_out: Path) -> None:
    """Frames ``start..end`` of ``source`` re-encoded (h264 needs even sizes: an odd last column or
    row is left out, which moves no joint)."""
    with VideoReader(source) as reader:
        w, h = reader.width - reader.width % 2, reader.height - reader.height % 2
        with VideoWriter(video_out, fps, w, h) as writer:
            for _, frame in reader.iter_frames(start, end + 1):
                writer.write(np.ascontiguousarray(frame[:h, :w]))


def _write_clips(out: Path, source: Path, name: str, insts: list[Instance], tracked: Tracked) -> int:
    spans = sorted({(i.start, i.end) for i in insts})
    for k, (start, end) in enumerate(spans, start=1):
        clip = f"{name}/{k:04d}.mp4"
        _write_clip(source, start, end, tracked.fps, out / "videos" / clip)
        joints = out / "joints" / clip[:-4]
        joints.parent.mkdir(parents=True, exist_ok=True)
        np.save(f"{joints}.npy", tracked.joints(start, end))
        for inst in insts:
            if (inst.start, inst.end) == (start, end):
                inst.clip = clip
    return len(spans)


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _annotation_row(inst: Instance) -> list[Any]:
    cats, vad = inst.scores()
    return [inst.clip, inst.person_id, inst.start, inst.end, *[f"{c:.6g}" for c in cats],
            *[f"{v:.6g}" for v in vad], "", "", "", ""]


def _write_annotations(out: Path, instances: list[Instance]) -> None:
    of = {s: [_annotation_row(i) for i in instances if i.split == s] for s in ("train", "val", "test")}
    ann = out / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    write_text(ann / "train.csv", _csv(of["train"]))
    write_text(ann / "val.csv", _csv(of["val"]))
    write_text(ann / "test_meta.csv", _csv([r[:4] for r in of["test"]]))
    write_text(ann / "test_labels.csv", _csv(of["test"]))


def _manifest(report: ImportReport, settings: dict[str, Any], labels: Path, seed: int,
              fractions: tuple[float, float]) -> dict[str, Any]:
    return {
        "format": "beenet-import", "version": 1, "beenet_version": __version__,
        "labels": str(labels), "seed": seed, "val_fraction": fractions[0], "test_fraction": fractions[1],
        "pass_one": settings, "joints": "OpenPose-18 rows of every tracked person, frames absolute "
        "(the source video's), including frames the tracker filled in inside a gap",
        "splits": report.splits,
        "instances": [{"video": i.clip, "person_id": i.person_id, "split": i.split, "source": str(i.source),
                       "span": [i.start, i.end], "annotators": [r.annotator for r in i.rows],
                       "label_lines": [r.line for r in i.rows]} for i in report.instances],
        "problems": [{"where": p.where, "reason": p.reason} for p in report.problems],
    }


def import_dataset(inputs: Sequence[str | Path], labels: str | Path, out: str | Path,
                   pose: Callable[[], PoseBackend], *,
                   tracking: TrackingConfig | None = None, val_fraction: float = 0.2, test_fraction: float = 0.0,
                   seed: int = 0, show_progress: bool | None = None,
                   say: Callable[[str], None] = lambda _: None) -> ImportReport:
    """Import the labelled videos ``inputs`` (see the module docstring). ``pose`` gives the pose
    backend (called once, when the first video is to be tracked); ``say`` gets one line per
    problem as it is found. Raises :class:`BeenetError` when nothing could be imported."""
    out, labels = Path(out), Path(labels)
    tracking = tracking or TrackingConfig()
    _check_out(out)
    rows, problems = read_labels(labels)
    for p in problems:
        say(str(p))
    videos = find_videos(inputs)
    report = ImportReport(out, problems=problems)
    n_seen = len(problems)
    by_video = _resolve(rows, videos, str(labels), problems)
    tracked: dict[Path, Tracked] = {}
    settings: dict[str, Any] = {}
    for source, vrows in by_video.items():
        try:
            tracked[source] = tracked_people(source, pose(), tracking, show_progress)
        except BeenetError as exc:
            lines = ", ".join(str(r.line) for r in vrows)
            problems.append(Problem(f"{labels}, line{'s' if len(vrows) > 1 else ''} {lines}",
                                    f"the video cannot be read: {exc}"))
            continue
        settings = tracked[source].settings
        report.instances += _instances_of(source, vrows, tracked[source], str(labels), problems)
        for p in problems[n_seen:]:
            say(str(p))
        n_seen = len(problems)
    for p in problems[n_seen:]:
        say(str(p))
    if not report.instances:
        raise BeenetError(f"{labels}: no row could be imported ({len(problems)} problems; the first: "
                          f"{problems[0] if problems else 'the file has no label rows'})")
    sources = sorted({str(i.source) for i in report.instances})
    report.splits = draw_splits(sources, val_fraction, test_fraction, seed)
    split_of = {v: s for s, vs in report.splits.items() for v in vs}
    taken: set[str] = set()
    for source in sorted({i.source for i in report.instances}, key=str):
        insts = [i for i in report.instances if i.source == source]
        for i in insts:
            i.split = split_of[str(source)]
        report.clips += _write_clips(out, source, _clip_name(source, taken), insts, tracked[source])
    _write_annotations(out, report.instances)
    write_json(out / MANIFEST, _manifest(report, settings, labels, seed, (val_fraction, test_fraction)))
    return report
