"""The view of a ``beenet predict --out`` folder: ``index.html`` and one ``<stem>.html`` per video.

Reads, per video, ``<stem>.csv`` (the window table; or ``.json``/``.parquet``) with its
``<stem>.meta.json``, and when present ``<stem>_frames.csv`` (per-frame rows) and
``<stem>_keypoints.npy`` (BoLD joints rows ``[frame, person_id, x0, y0, c0, ...]``). Missing
optional files only remove what they feed: no keypoints, no skeleton; no per-frame table, boxes
from the window table.

Page data is compact: per person and frame, ``int16`` box and joints in quarter pixels, ``uint8``
joint and detection confidences, an ``int32`` index into the window rows; sent as base64.
"""

from __future__ import annotations

import base64
import html
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beenet.atomic import write_text
from beenet.errors import BeenetError
from beenet.inference.timeline import person_colour, seen_spans
from beenet.labels import CATEGORIES, NUM_JOINTS, OPENPOSE_EDGES, VAD_NAMES
from beenet.view.folder import VideoEntry, find_videos, locate_video
from beenet.view.page import render_page
from beenet.view.proxy import make_proxy, probe, proxy_path
from beenet.view.reading import MAX_FRAMES, Roots, ViewInputError, read_frames, read_keypoints, read_window_table

log = logging.getLogger(__name__)

#: Quarter pixels: int16 holds coordinates up to 8191 px at 0.25 px resolution.
SUBPIXEL = 4


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _window_data(df: pd.DataFrame) -> dict[str, Any]:
    cats = df.loc[:, list(CATEGORIES)].to_numpy(np.float64)
    vad = df.loc[:, list(VAD_NAMES)].to_numpy(np.float64)
    boxes = np.nan_to_num(df.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64)) if "box_x" in df else np.zeros((len(df), 4))
    return {
        "person": df["person_id"].astype(int).tolist(),
        "start": df["start_frame"].astype(int).tolist(),
        "end": df["end_frame"].astype(int).tolist(),
        "box": np.round(boxes, 1).ravel().tolist(),
        "cat": np.round(cats, 3).ravel().tolist(),
        "vad": np.round(vad, 3).ravel().tolist(),
    }


def _score_key(values: np.ndarray) -> tuple:
    return tuple(np.round(values.astype(np.float64), 3).tolist())


def _closest_window(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Per frame, the row (of ``rows``) whose window covers it with the closest centre, -1 if none."""
    best = np.full(len(frames), -1, dtype=np.int64)
    dist = np.full(len(frames), np.inf)
    for r in rows:
        s, e = starts[r], ends[r]
        d = np.where((frames >= s) & (frames <= e), np.abs(frames - (s + e) / 2.0), np.inf)
        better = d < dist
        best[better] = r
        dist[better] = d[better]
    return best


def person_data(df: pd.DataFrame, windows: dict[str, Any], frames_df: pd.DataFrame | None,
                keypoints: np.ndarray | None, num_frames: int) -> list[dict[str, Any]]:
    """Per person: frames, boxes, confidences, window index per frame, joints (all base64)."""
    pids = df["person_id"].to_numpy(int)
    starts, ends = df["start_frame"].to_numpy(int), df["end_frame"].to_numpy(int)
    ids = set(pids.tolist())
    if frames_df is not None:
        ids |= set(frames_df["person_id"].astype(int).tolist())
    score_index = {}
    scores = df.loc[:, [*CATEGORIES, *VAD_NAMES]].to_numpy(np.float64)
    for r in range(len(df)):
        score_index.setdefault((int(pids[r]), _score_key(scores[r])), r)
    cat_all = windows["cat"]
    people = []
    for pid in sorted(ids):
        rows = np.flatnonzero(pids == pid)
        if frames_df is not None:
            sub = frames_df[frames_df["person_id"].astype(int) == pid].sort_values("frame")
            fr = sub["frame"].to_numpy(np.int64)
            box = sub.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64)
            conf = sub["confidence"].to_numpy(np.float64) if "confidence" in sub else np.ones(len(sub))
            interp = sub["interpolated"].astype(bool).to_numpy() if "interpolated" in sub else np.zeros(len(sub), bool)
            sc = sub.loc[:, [*CATEGORIES, *VAD_NAMES]].to_numpy(np.float64) if all(c in sub for c in CATEGORIES) else None
            win = np.full(len(fr), -1, dtype=np.int64)
            closest = _closest_window(starts, ends, rows, fr)
            for i in range(len(fr)):
                if sc is None or np.isnan(sc[i]).any():
                    win[i] = closest[i]
                    continue
                r = score_index.get((pid, _score_key(sc[i])))
                if r is None:  # scores of no window row: keep them as an extra row
                    r = len(windows["person"])
                    windows["person"].append(pid); windows["start"].append(int(fr[i])); windows["end"].append(int(fr[i]))
                    windows["box"].extend(np.round(box[i], 1).tolist())
                    cat_all.extend(np.round(sc[i, :26], 3).tolist()); windows["vad"].extend(np.round(sc[i, 26:], 3).tolist())
                    score_index[(pid, _score_key(sc[i]))] = r
                win[i] = r
        else:
            covered = np.zeros(num_frames, bool)
            for r in rows:
                covered[max(0, starts[r]): min(num_frames, ends[r] + 1)] = True
            fr = np.flatnonzero(covered)
            win = _closest_window(starts, ends, rows, fr)
            box = df.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64)[win]
            conf = np.full(len(fr), np.nan)
            interp = np.zeros(len(fr), bool)
        entry: dict[str, Any] = {
            "id": int(pid), "colour": "rgb({},{},{})".format(*person_colour(pid)), "n": int(len(fr)),
            "frames": b64(fr.astype(np.int32)),
            "box": b64(np.clip(np.round(np.nan_to_num(box) * SUBPIXEL), -32768, 32767).astype(np.int16)),
            "conf": b64(np.where(np.isnan(conf), 255, np.clip(np.round(conf * 254), 0, 254)).astype(np.uint8)),
            "interp": b64(interp.astype(np.uint8)),
            "win": b64(win.astype(np.int32)),  # a long video has more than 32767 window rows
        }
        if keypoints is not None and len(keypoints):
            kp = keypoints[keypoints[:, 1].astype(int) == pid]
            kp = kp[np.argsort(kp[:, 0], kind="stable")]
            xy = kp[:, 2:].reshape(len(kp), NUM_JOINTS, 3)
            ok = np.isfinite(xy[..., 0]) & np.isfinite(xy[..., 1]) & (xy[..., 2] > 0)
            q = np.where(ok[..., None], np.round(np.nan_to_num(xy[..., :2]) * SUBPIXEL), -32768)
            entry["kp"] = {"frames": b64(kp[:, 0].astype(np.int32)),
                           "xy": b64(np.clip(q, -32768, 32767).astype(np.int16)),
                           "c": b64(np.clip(np.round(np.where(ok, xy[..., 2], 0) * 255), 0, 255).astype(np.uint8))}
        pw = np.flatnonzero(np.asarray(windows["person"]) == pid)
        if len(pw):
            cats = np.asarray(cat_all, dtype=np.float64).reshape(-1, 26)[pw].mean(0)
            top = np.argsort(-cats, kind="stable")[:3]
            entry["top"] = [[CATEGORIES[j], round(float(cats[j]), 3)] for j in top]
        else:
            entry["top"] = []
        people.append(entry)
    return people


def add_seen(people: list[dict[str, Any]], frames_df: pd.DataFrame | None, keypoints: np.ndarray | None,
             fps: float) -> None:
    """Give each person ``seen``: the spans of frames where they were seen (the per-frame rows, else
    the keypoints' detected frames, else their windows), gaps under half a second closed. The heat
    map and V/A/D lines are drawn only there, not over a window's frames before they appeared."""
    bridge = max(1, int(round(0.5 * (fps or 25.0))))
    for p in people:
        pid = p["id"]
        if frames_df is not None:
            fr = frames_df.loc[frames_df["person_id"] == pid, "frame"].to_numpy(np.int64)
        else:
            fr = np.frombuffer(base64.b64decode(p["frames"]), np.int32)
            if keypoints is not None and len(keypoints):
                kp = keypoints[(keypoints[:, 1] == pid) & (keypoints[:, 4::3] > 0).any(1)]
                fr = kp[:, 0].astype(np.int64) if len(kp) else fr
        p["seen"] = b64(seen_spans(fr, bridge))


def _video_source(roots: Roots, entry: VideoEntry, video: Path, proxy: bool) -> tuple[dict[str, Any], Any, str | None, Path]:
    """What the page plays for ``video`` (its URLs), its probe, a note, the file played (``video``
    or a proxy in the folder)."""
    out = roots.out
    info = probe(video)
    shown, note = video, None
    if not info.playable(video):
        dest = proxy_path(out, entry.stem)
        if not proxy:
            note = f"{video.name} ({info.codec}) may not play in a browser; rerun without --no-proxy"
        elif dest.exists() and not roots.inside(dest):
            note = f"{dest} resolves outside {out}; no proxy made (remove it)"
        else:
            shown = make_proxy(video, dest)
    src = {"file": _rel_url(out, shown), "media": None if roots.inside(shown) else f"_media/{entry.stem}{shown.suffix}",
           "name": video.name}
    return src, info, note, shown


def video_page_data(roots: Roots, entry: VideoEntry, proxy: bool = True) -> dict[str, Any]:
    """Everything one video page shows, as embeddable JSON. A file of the video that is refused
    (outside the folder, unreadable, not what predict writes) raises :class:`ViewInputError`."""
    out = roots.out
    df, meta = read_window_table(roots, entry.table_path)
    frames_path = out / f"{entry.stem}_frames.csv"
    kp_path = out / f"{entry.stem}_keypoints.npy"
    frames_df = read_frames(roots, frames_path)
    keypoints = read_keypoints(roots, kp_path)
    video, note = locate_video(roots, entry, meta)
    fps = float(meta.get("fps") or 0.0)
    num_frames = int(df["end_frame"].max() + 1) if len(df) else 0
    width = height = 0
    src: dict[str, Any] | None = None
    shown = None
    if video is not None:
        try:
            src, info, note, shown = _video_source(roots, entry, video, proxy)
            width, height = info.width, info.height
            fps = fps or info.fps
            num_frames = max(num_frames, min(info.num_frames, MAX_FRAMES))
        except Exception as exc:  # a video that cannot be read: the page still shows the data
            log.warning("cannot read %s: %s", video, exc)
            note = f"{video} cannot be read ({type(exc).__name__}: {exc})"
    elif note is None:
        note = "the input video was not found (moved?); showing the data without it"
    if frames_df is not None and len(frames_df):
        num_frames = max(num_frames, int(frames_df["frame"].max()) + 1)
    windows = _window_data(df)
    people = person_data(df, windows, frames_df, keypoints, num_frames)
    add_seen(people, frames_df, keypoints, fps)
    if not width and people:  # no video: size the canvas around the boxes
        b = np.nan_to_num(df.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64))
        width, height = int(np.clip((b[:, 0] + b[:, 2]).max(), 0, 8191)) + 1, int(np.clip((b[:, 1] + b[:, 3]).max(), 0, 8191)) + 1
    return {
        "kind": "video", "stem": entry.stem, "name": meta.get("video") or entry.stem,
        "fps": fps or 25.0, "num_frames": num_frames, "width": width or 640, "height": height or 360,
        "video": src, "note": note, "meta": meta, "subpixel": SUBPIXEL,
        "categories": list(CATEGORIES), "vad_names": list(VAD_NAMES), "edges": [list(e) for e in OPENPOSE_EDGES],
        "windows": windows, "people": people, "_played": shown,
        "sources": {"windows": entry.table_path.name,
                    "frames": frames_path.name if frames_df is not None else None,
                    "keypoints": kp_path.name if keypoints is not None else None},
    }


def _rel_url(out: Path, p: Path) -> str:
    try:
        rel = os.path.relpath(p.resolve(), out.resolve())
    except ValueError:  # another drive
        return p.resolve().as_uri()
    return "/".join(rel.split(os.sep)).replace("#", "%23").replace("?", "%3F")


def page_name(stem: str) -> str:
    return f"{stem}.html"


@dataclass
class ResultsView:
    """What :func:`build_results_view` made: the index page, the videos outside the folder the
    server may play (``_media/<stem><suffix>`` -> file), the files and entries refused (one line
    each; their videos have no page) and notes (a video shown without its input video)."""

    index: Path
    media: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _write_video_page(roots: Roots, e: VideoEntry, proxy: bool, view: ResultsView) -> dict[str, Any]:
    out = roots.out
    data = video_page_data(roots, e, proxy=proxy)
    played = data.pop("_played")  # the file, for the server; not in the page
    data["home"] = "../" * e.stem.count("/") + "index.html"
    page = out / page_name(e.stem)
    roots.checked(page.parent, "the page's folder")  # (the table's folder: it exists, inside)
    page.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = render_page(f"{data['name']} - beenet", "video.js", data)
    except ValueError as exc:  # NaN or inf somewhere in the data (JSON has none)
        raise ViewInputError(f"{e.table_path}: holds a value that cannot be shown ({exc})") from exc
    write_text(page, text)
    if data["video"] and data["video"]["media"]:
        view.media[data["video"]["media"]] = played.resolve()
    if data["note"]:
        view.notes.append(f"{e.stem}: {data['note']}")
    timeline = out / f"{e.stem}_timeline.png"
    return {"stem": e.stem, "page": page_name(e.stem), "name": data["name"],
            "people": len(data["people"]), "windows": len(data["windows"]["person"]),
            "duration_s": round(data["num_frames"] / data["fps"], 2) if data["fps"] else None,
            "top": [[p["id"], p["colour"], p["top"]] for p in data["people"]],
            "timeline": f"{e.stem}_timeline.png" if timeline.exists() and roots.inside(timeline) else None,
            "note": data["note"]}


def build_results_view(out: str | Path, proxy: bool = True, videos: Sequence[str | Path] = ()) -> ResultsView:
    """Write ``out/index.html`` and one page per video of a ``beenet predict --out`` folder.

    Everything read resolves inside ``out``, or for input videos inside ``out`` or one of
    ``videos`` (folders or files the user named); anything else is refused. A video whose files
    are refused or unreadable gets no page and a line in ``problems``; the others are viewed."""
    out = Path(out)
    if not out.is_dir():
        raise BeenetError(f"{out}: no such folder; give the --out folder of 'beenet predict'")
    roots = Roots.of(out, videos)
    view = ResultsView(out / "index.html")
    entries, failures = find_videos(out, view.problems, roots)
    items = []
    for e in entries:
        try:
            items.append(_write_video_page(roots, e, proxy, view))
        except ViewInputError as exc:
            view.problems.append(str(exc))
    index = {"kind": "index", "title": f"beenet predictions: {html.escape(out.resolve().name)}",
             "videos": items, "failures": failures, "problems": view.problems}
    write_text(view.index, render_page(index["title"], "index.js", index))
    return view


def write_results_view(out: str | Path, proxy: bool = True, videos: Sequence[str | Path] = ()) -> Path:
    """:func:`build_results_view`, its problems and notes logged as warnings; the index page."""
    view = build_results_view(out, proxy, videos)
    for line in view.problems + view.notes:
        log.warning("%s", line)
    return view.index


def media_map(out: Path, videos: Sequence[str | Path] = ()) -> dict[str, Path]:
    """``_media/<stem><suffix>`` -> the input video, for the videos outside ``out`` that lie in
    ``videos`` (for the server); nothing else."""
    roots = Roots.of(out, videos)
    m: dict[str, Path] = {}
    for e in find_videos(out, [], roots)[0]:
        try:
            _, meta = read_window_table(roots, e.table_path)
        except ViewInputError:
            continue
        v, _ = locate_video(roots, e, meta)
        if v is not None and not roots.inside(v):
            m[f"_media/{e.stem}{v.suffix}"] = v.resolve()
    return m
