"""``beenet data check``: everything that would stop a run on a BoLD directory, found up front.

:func:`check_bold` reads every annotation row (collecting bad rows instead of stopping at the
first), looks for each clip's video and joints file, checks that each annotated person has
joint rows, opens every video's header and loads every joints file once (the verdict ``beenet
train`` acts on: :mod:`beenet.data.usable`, shared), and (``deep=True``) decodes each video's
first frame. It returns a JSON-ready dict:
``{"root", "splits": {"train": {...}, "val": {...}, "test": {...}}, "usable", "warnings", ...}``.
:func:`format_report` turns that into the text a person reads.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from beenet.data.bold import ANNOTATION_FILES, SPLITS, BoLD, Instance, read_annotations
from beenet.data.joints import load_joints_array
from beenet.data.usable import ClipStatus, clip_statuses
from beenet.media.video import VideoReader
from beenet.errors import BeenetError, BoLDFormatError
from beenet.labels import CATEGORIES, POSITIVE_THRESHOLD
from beenet.progress import progress

log = logging.getLogger(__name__)

#: How many problems of each kind the text report lists before "... and N more".
SHOW = 10


def _rel(bold: BoLD, path: str | Path) -> str:
    try:
        return str(Path(path).relative_to(bold.root))
    except ValueError:
        return str(path)


class _Joints:
    """Joints files loaded once each: the array, or the error that made it unusable."""

    def __init__(self, bold: BoLD) -> None:
        self.bold = bold
        self.arrays: dict[str, np.ndarray | None] = {}
        self.errors: dict[str, str] = {}

    def get(self, video: str) -> np.ndarray | None:
        if video not in self.arrays:
            try:
                self.arrays[video] = load_joints_array(self.bold.joints_path(video))
            except BoLDFormatError as exc:
                self.arrays[video] = None
                self.errors[video] = exc.reason
        return self.arrays[video]


def _check_split(
    bold: BoLD, split: str, joints: _Joints
) -> tuple[dict[str, Any], list[Instance], Counter[str]]:
    """One split's counts and problems; its usable instances are counted by :func:`_usable`."""
    name, labelled = ANNOTATION_FILES[split]
    path = bold.annotations_dir / name
    report: dict[str, Any] = {
        "file": _rel(bold, path),
        "found": path.is_file(),
        "parsed": False,
        "instances": 0,
        "clips": 0,
        "complete_instances": 0,
        "missing_videos": [],
        "missing_joints": [],
        "no_joint_rows": [],
        "bad_rows": [],
        "unreadable_videos": [],
        "usable_instances": 0,
        "usable_with_joints": 0,
    }
    complete: Counter[str] = Counter()  # complete instances per clip
    if not report["found"]:
        return report, [], complete
    bad: list[dict] = []
    try:
        instances = read_annotations(path, labelled=labelled, bad_rows=bad)
    except BoLDFormatError as exc:  # the file as a whole cannot be read
        bad.append({"file": exc.file, "line": exc.line, "reason": exc.reason})
        instances = []
    for row in bad:
        row["file"] = _rel(bold, row["file"])
    report["bad_rows"].extend(bad)
    report["parsed"] = not bad
    clips = list(dict.fromkeys(inst.clip for inst in instances))
    report["instances"] = len(instances)
    report["clips"] = len(clips)
    by_clip: dict[str, list[Instance]] = {}
    for inst in instances:
        by_clip.setdefault(inst.clip, []).append(inst)
    for clip in progress(clips, desc=f"checking {split} clips", unit="clip"):
        has_video = bold.video_path(clip).is_file()
        if not has_video:
            report["missing_videos"].append(clip)
        if not bold.joints_path(clip).is_file():
            report["missing_joints"].append(clip)
            continue
        arr = joints.get(clip)
        if arr is None:
            report["bad_rows"].append(
                {"file": _rel(bold, bold.joints_path(clip)), "line": None, "reason": joints.errors[clip]}
            )
            continue
        people = set(np.unique(arr[:, 1]).astype(np.int64).tolist())
        for inst in by_clip[clip]:
            if inst.person_id in people:
                complete[clip] += int(has_video)
            else:
                report["no_joint_rows"].append({"video": clip, "person_id": inst.person_id})
    report["complete_instances"] = int(sum(complete.values()))
    if labelled and instances:
        cats = np.stack([inst.categories for inst in instances])
        positives = (cats >= POSITIVE_THRESHOLD).sum(0)
        report["positives"] = {c: int(n) for c, n in zip(CATEGORIES, positives)}
    return report, instances, complete


def _usable(bold: BoLD, splits: dict[str, dict], instances: dict[str, list[Instance]],
            complete: dict[str, Counter[str]]) -> dict[str, ClipStatus]:
    """The verdict training acts on (:mod:`beenet.data.usable`, the same function): every clip's
    video header opened and joints loaded once; per split the usable instances (and those usable
    by a run that reads skeletons or body crops), and the videos that do not open."""
    statuses = clip_statuses(bold, [i.clip for s in SPLITS for i in instances[s]])
    for split in SPLITS:
        r = splits[split]
        r["usable_instances"] = sum(statuses[i.clip].problem(False) is None for i in instances[split])
        r["usable_with_joints"] = sum(statuses[i.clip].problem(True) is None for i in instances[split])
        for clip in dict.fromkeys(i.clip for i in instances[split]):
            st = statuses[clip]
            if st.video is not None and bold.video_path(clip).is_file():
                reason = st.video.removeprefix(f"{bold.video_path(clip)}: ")
                r["unreadable_videos"].append({"video": clip, "reason": reason})
                r["complete_instances"] -= complete[split].pop(clip, 0)
    return statuses


def _frame_ranges(bold: BoLD, instances: list[Instance], joints: _Joints) -> dict[str, int]:
    """How the annotations' min/max_frame relate to the joints' frame numbers (semantics unverified
    in the release): within the person's absolute joints frames, or within the re-based ones."""
    out = {"checked": 0, "within_absolute": 0, "within_rebased": 0}
    for inst in instances:
        arr = joints.arrays.get(inst.clip)
        if arr is None or len(arr) == 0:
            continue
        frames = arr[arr[:, 1] == inst.person_id, 0]
        if len(frames) == 0:
            continue
        offset = arr[:, 0].min()
        out["checked"] += 1
        lo, hi = frames.min(), frames.max()
        out["within_absolute"] += int(lo <= inst.min_frame and inst.max_frame <= hi)
        out["within_rebased"] += int(lo - offset <= inst.min_frame and inst.max_frame <= hi - offset)
    return out


def _deep(
    bold: BoLD, splits: dict[str, dict], clips_of: dict[str, list[str]], joints: _Joints,
    complete: dict[str, Counter[str]], instances: dict[str, list[Instance]], statuses: dict[str, ClipStatus],
) -> list[str]:
    """Open every present video; record unreadable ones (no longer complete instances) and
    joints that run past the video's end."""
    warnings = []
    opened_not = {(s, u["video"]) for s in SPLITS for u in splits[s]["unreadable_videos"]}
    todo = [(s, c) for s in SPLITS for c in clips_of.get(s, [])
            if bold.video_path(c).is_file() and (s, c) not in opened_not]
    past_end = []
    for split, clip in progress(todo, desc="opening videos", unit="video"):
        try:
            with VideoReader(bold.video_path(clip)) as reader:
                reader.read([0])
                n = reader.num_frames
        except BeenetError as exc:
            reason = str(exc).removeprefix(f"{bold.video_path(clip)}: ")
            splits[split]["unreadable_videos"].append({"video": clip, "reason": reason})
            splits[split]["complete_instances"] -= complete[split].pop(clip, 0)
            # Its instances were counted usable at the header level; training skips them per sample.
            n_clip = sum(1 for i in instances[split] if i.clip == clip)
            st = statuses[clip]
            splits[split]["usable_instances"] -= n_clip if st.problem(False) is None else 0
            splits[split]["usable_with_joints"] -= n_clip if st.problem(True) is None else 0
            continue
        arr = joints.arrays.get(clip)
        if arr is not None and len(arr) and arr[:, 0].max() - arr[:, 0].min() >= n:
            past_end.append(clip)
    if past_end:
        warnings.append(
            f"{len(past_end)} clips have joint rows past the video's last frame (e.g. {past_end[0]}); "
            "those rows are ignored"
        )
    return warnings


def check_bold(root: str | Path, deep: bool = False) -> dict[str, Any]:
    """Check a BoLD directory; see the module docstring for the result's shape.

    Raises :class:`beenet.errors.DataNotFoundError` when ``root`` is not a BoLD directory at all.
    """
    bold = BoLD(root)
    joints = _Joints(bold)
    splits: dict[str, dict] = {}
    instances: dict[str, list[Instance]] = {}
    complete: dict[str, Counter[str]] = {}
    for split in SPLITS:
        splits[split], instances[split], complete[split] = _check_split(bold, split, joints)
    warnings: list[str] = []
    if not bold.joints_dir.is_dir():
        warnings.append("no joints/ directory: body crops, skeletons and frame selection need BoLD's joints")
    if not splits["test"]["found"]:
        warnings.append(f"{splits['test']['file']} not found: no test predictions can be written")
    cross_split, repeated = _shared_instances(bold, instances)
    warnings += repeated
    shared = Counter(c for s in SPLITS for c in dict.fromkeys(i.clip for i in instances[s]))
    n_shared = sum(1 for n in shared.values() if n > 1)
    if n_shared:
        warnings.append(f"{n_shared} clips appear in more than one split")
    for split in ("train", "val"):
        pos = splits[split].get("positives")
        if pos:
            none = [c for c, n in pos.items() if n == 0]
            if none:
                warnings.append(
                    f"{split}: {len(none)} {'category has' if len(none) == 1 else 'categories have'} "
                    f"no positive (score >= {POSITIVE_THRESHOLD}): "
                    f"{', '.join(none)}; the metric leaves {'it' if len(none) == 1 else 'them'} out of mAP/mRA"
                )
    statuses = _usable(bold, splits, instances, complete)
    if deep:
        clips_of = {s: list(dict.fromkeys(i.clip for i in instances[s])) for s in SPLITS}
        warnings += _deep(bold, splits, clips_of, joints, complete, instances, statuses)
    usable = all(
        splits[s]["found"] and splits[s]["parsed"] and splits[s]["usable_instances"] > 0 for s in ("train", "val")
    )
    return {
        "root": str(bold.root),
        "deep": bool(deep),
        "splits": splits,
        "frame_ranges": _frame_ranges(bold, instances["train"] + instances["val"] + instances["test"], joints),
        "cross_split": cross_split,
        "warnings": warnings,
        "usable": bool(usable),
    }


def _shared_instances(bold: BoLD, instances: dict[str, list[Instance]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Instances (video, person) annotated in two splits (under the official protocol a model would
    be trained and scored on the same person: a problem, with every row that names them), and the
    warnings about an instance repeated within one split's file."""
    rows: dict[tuple[str, int], list[tuple[str, Instance]]] = {}
    for split in SPLITS:
        for inst in instances[split]:
            rows.setdefault(inst.key, []).append((split, inst))
    cross, repeated = [], []
    for (video, person), found in rows.items():
        where = [{"split": s, "file": _rel(bold, bold.annotations_dir / ANNOTATION_FILES[s][0]), "line": i.line}
                 for s, i in found]
        if len({s for s, _ in found}) > 1:
            cross.append({"video": video, "person_id": person, "rows": where})
        elif len(found) > 1:
            lines = ", ".join(str(w["line"]) for w in where)
            repeated.append(f"instance ({video}, person {person}) is repeated in {where[0]['file']} (lines {lines})")
    return cross, repeated


def _listing(title: str, items: list[str], show: int = SHOW) -> list[str]:
    if not items:
        return []
    lines = [f"  {title} ({len(items)}):"]
    lines += [f"    {it}" for it in items[:show]]
    if len(items) > show:
        lines.append(f"    ... and {len(items) - show} more")
    return lines


def _verdict(report: dict[str, Any]) -> list[str]:
    splits = report["splits"]
    if report["usable"]:
        lines = ["Verdict: usable. "
                 + "; ".join(f"{s}: {splits[s]['usable_instances']} of {splits[s]['instances']} instances usable "
                             f"({splits[s]['usable_with_joints']} with joints, {splits[s]['complete_instances']} "
                             "complete)"
                             for s in SPLITS if splits[s]["found"])]
        left = sum(splits[s]["instances"] - splits[s]["usable_instances"] for s in ("train", "val"))
        if left:
            lines.append(f"  beenet train leaves out {left} train/val instances whose video is missing or "
                         "unreadable or whose joints file is unreadable (listed above); a run that reads "
                         "skeletons or body crops also those without a joints file.")
        shared = report.get("cross_split") or []
        if shared:
            lines.append(f"  {len(shared)} instance{'s are' if len(shared) != 1 else ' is'} in two splits (listed "
                         "above): the official protocol would train on what it scores; delete the copies.")
        incomplete = sum(splits[s]["instances"] - splits[s]["complete_instances"] for s in SPLITS)
        if incomplete:
            lines.append(f"  {incomplete} instances lack a readable video, a joints file or joint rows: restore "
                         "the files listed above, or leave those instances out of the run.")
        return lines
    lines = ["Verdict: NOT usable."]
    for s in ("train", "val"):
        r = splits[s]
        if not r["found"]:
            lines.append(f"  - {r['file']} is missing: copy the release's annotations/ folder into {report['root']}")
        elif not r["parsed"]:
            n = sum(1 for b in r["bad_rows"] if b["line"] is not None)
            lines.append(f"  - {r['file']} has {n} bad row{'s' if n != 1 else ''}: fix or delete "
                         f"{'them' if n != 1 else 'it'} (listed above); BoLD's CSVs are headerless, 37 columns a row")
        elif r["usable_instances"] == 0:
            lines.append(f"  - no {s} instance is usable (a video that opens, a joints file that loads when "
                         "present): check that videos/ and joints/ hold the release's 003/<id>.mp4/<NNNN>.mp4 "
                         "and .npy files")
    return lines


def format_report(report: dict[str, Any], show: int = SHOW) -> str:
    """The text report: a counts table, the first problems of each kind, warnings, the verdict."""
    splits = report["splits"]
    head = ("split", "file", "instances", "clips", "usable", "complete", "no video", "unreadable", "no joints",
            "no rows", "bad rows")
    rows = []
    for s in SPLITS:
        r = splits[s]
        if not r["found"]:
            rows.append((s, r["file"] + " (missing)", "-", "-", "-", "-", "-", "-", "-", "-", "-"))
            continue
        rows.append((s, r["file"], r["instances"], r["clips"], r["usable_instances"], r["complete_instances"],
                     len(r["missing_videos"]), len(r["unreadable_videos"]), len(r["missing_joints"]),
                     len(r["no_joint_rows"]),
                     len(r["bad_rows"])))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(  # noqa: E731
        str(x).ljust(w) if i < 2 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths)))
    lines = [f"BoLD directory: {report['root']}", "", fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    problems: list[str] = []
    for s in SPLITS:
        r = splits[s]
        problems += _listing(f"{s}: bad rows", [
            f"{b['file']}" + (f", line {b['line']}" if b["line"] is not None else "") + f": {b['reason']}"
            for b in r["bad_rows"]], show)
        problems += _listing(f"{s}: missing videos", [f"videos/{v}" for v in r["missing_videos"]], show)
        problems += _listing(f"{s}: missing joints files",
                             [f"joints/{Path(v).with_suffix('.npy').as_posix()}" for v in r["missing_joints"]], show)
        problems += _listing(f"{s}: annotated persons without joint rows",
                             [f"{p['video']} person {p['person_id']}" for p in r["no_joint_rows"]], show)
        problems += _listing(f"{s}: unreadable videos",
                             [f"{u['video']}: {u['reason']}" for u in r["unreadable_videos"]], show)
    problems += _listing("instances in two splits (the official protocol would train and score the same person; "
                         "delete the copy)",
                         [f"{c['video']} person {c['person_id']}: "
                          + " and ".join(f"{w['file']}, line {w['line']}" for w in c["rows"])
                          for c in report.get("cross_split", [])], show)
    lines += ["", "Problems:" if problems else "Problems: none found" + ("" if report["deep"] else
              " (add --deep to also open every video)")]
    lines += problems
    if report["warnings"]:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in report["warnings"]]
    fr = report.get("frame_ranges") or {}
    if fr.get("checked"):
        lines += ["", f"Annotation frame ranges: {fr['within_absolute']} of {fr['checked']} lie within the "
                      f"person's absolute joints frames, {fr['within_rebased']} within the re-based ones."]
    lines += [""] + _verdict(report)
    return "\n".join(lines)
