"""The view of a ``beenet predict --out`` folder: ``index.html`` and one ``<stem>.html`` per video.

Reads, per video, ``<stem>.csv`` (the window table; or ``.json``/``.parquet``) with its
``<stem>.meta.json``, and when present ``<stem>_frames.csv`` (per-frame rows) and
``<stem>_keypoints.npy`` (BoLD joints rows ``[frame, person_id, x0, y0, c0, ...]``). Missing
optional files only remove what they feed: no keypoints, no skeleton; no per-frame table, boxes
from the window table.

Page data is compact: per person and frame, ``int16`` box and joints in quarter pixels, ``uint8``
joint and detection confidences, an ``int16`` index into the window rows; sent as base64.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beenet.atomic import write_text
from beenet.errors import BeenetError
from beenet.inference.render import person_colour
from beenet.inference.table import read_table_file
from beenet.labels import CATEGORIES, NUM_JOINTS, OPENPOSE_EDGES, VAD_NAMES
from beenet.view.page import render_page
from beenet.view.proxy import make_proxy, probe, proxy_path

log = logging.getLogger(__name__)

SUMMARY = "predict_summary.json"
#: The summary each rank writes under torchrun (``beenet.cli.predict.summary_name``).
RANK_SUMMARY = re.compile(r"predict_summary\.rank(\d+)-of-(\d+)\.json")
TABLE_SUFFIXES = (".csv", ".json", ".parquet")
#: Quarter pixels: int16 holds coordinates up to 8191 px at 0.25 px resolution.
SUBPIXEL = 4


@dataclass
class VideoEntry:
    stem: str
    table_path: Path
    video: Path | None
    extra: dict[str, Any] = field(default_factory=dict)


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def latest_summaries(out: Path) -> list[Path]:
    """The summaries of the latest ``beenet predict`` into ``out``: ``predict_summary.json``, or
    under torchrun one ``predict_summary.rank<R>-of-<W>.json`` per rank. Files of an earlier run
    with another number of processes are left out (the group whose newest file is newest wins)."""
    groups: dict[str, list[Path]] = {}
    if (out / SUMMARY).is_file():
        groups["one process"] = [out / SUMMARY]
    for p in sorted(out.glob("predict_summary.rank*-of-*.json")):
        m = RANK_SUMMARY.fullmatch(p.name)
        if m:
            groups.setdefault(f"{m.group(2)} processes", []).append(p)
    if not groups:
        return []
    return max(groups.values(), key=lambda ps: max(p.stat().st_mtime_ns for p in ps))


def find_videos(out: Path) -> tuple[list[VideoEntry], list[dict[str, Any]]]:
    """The videos of a results folder (from ``predict_summary.json``, else the tables found) and
    the failures the summary lists."""
    entries: dict[str, VideoEntry] = {}
    failures: list[dict[str, Any]] = []
    for summary in latest_summaries(out):
        doc = json.loads(summary.read_text(encoding="utf-8"))
        failures += list(doc.get("failures", []))
        for v in doc.get("videos", []):
            tables = [o for o in v.get("outputs", []) if o.endswith(TABLE_SUFFIXES)
                      and not o.endswith("_frames.csv") and (out / o).exists()]
            if not tables:
                continue
            tables.sort(key=lambda o: TABLE_SUFFIXES.index(Path(o).suffix))
            stem = tables[0][: -len(Path(tables[0]).suffix)]
            entries[stem] = VideoEntry(stem, out / tables[0], Path(v["video"]) if v.get("video") else None, v)
    for suffix in TABLE_SUFFIXES:
        for p in sorted(out.rglob(f"*{suffix}")):
            rel = p.relative_to(out).as_posix()
            stem = rel[: -len(suffix)]
            if (stem in entries or rel.endswith(("_frames.csv", ".meta.json")) or rel == SUMMARY
                    or RANK_SUMMARY.fullmatch(rel)
                    or p.name.startswith(".") or "/." in rel or stem.endswith(".view")):
                continue
            if (suffix == ".json" and not _is_table_json(p)) or (suffix == ".csv" and not _is_table_csv(p)):
                continue  # some other file (metrics.csv, a config): not a predict table
            entries[stem] = VideoEntry(stem, p, None)
    return sorted(entries.values(), key=lambda e: e.stem), failures


def _is_table_csv(p: Path) -> bool:
    try:
        with p.open(encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    return {"person_id", "start_frame", "end_frame", "valence"} <= set(header)


def _is_table_json(p: Path) -> bool:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "rows" in doc and "columns" in doc


def read_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A window table and its metadata (csv + sidecar, json or parquet, as predict writes them)."""
    return read_table_file(path, "predict table", ("person_id", "start_frame", "end_frame", *CATEGORIES, *VAD_NAMES))


def locate_video(out: Path, entry: VideoEntry, meta: dict[str, Any]) -> Path | None:
    if entry.video is not None and entry.video.exists():
        return entry.video
    name = meta.get("video")
    for cand in ([out / name, out.parent / name] if name else []):
        if cand.is_file():
            return cand
    return None


def _window_data(df: pd.DataFrame) -> dict[str, Any]:
    cats = df.loc[:, list(CATEGORIES)].to_numpy(np.float64)
    vad = df.loc[:, list(VAD_NAMES)].to_numpy(np.float64)
    boxes = df.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64) if "box_x" in df else np.zeros((len(df), 4))
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
            "win": b64(win.astype(np.int16)),
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


def video_page_data(out: Path, entry: VideoEntry, proxy: bool = True) -> dict[str, Any]:
    """Everything one video page shows, as embeddable JSON."""
    df, meta = read_table(entry.table_path)
    video = locate_video(out, entry, meta)
    fps = float(meta.get("fps") or 0.0)
    num_frames = int(df["end_frame"].max() + 1) if len(df) else 0
    width = height = 0
    src: dict[str, Any] | None = None
    note = None
    if video is not None:
        try:
            info = probe(video)
            width, height = info.width, info.height
            fps = fps or info.fps
            num_frames = max(num_frames, info.num_frames)
            shown = video
            if not info.playable(video):
                if proxy:
                    shown = make_proxy(video, proxy_path(out, entry.stem))
                else:
                    note = f"{video.name} ({info.codec}) may not play in a browser; rerun without --no-proxy"
            src = {"file": _rel_url(out, shown), "media": None if _inside(out, shown) else f"_media/{entry.stem}{shown.suffix}",
                   "name": video.name}
        except Exception as exc:  # a video that cannot be read: the page still shows the data
            log.warning("cannot read %s: %s", video, exc)
            note = f"{video} cannot be read ({type(exc).__name__}: {exc})"
    else:
        note = "the input video was not found (moved?); showing the data without it"
    frames_path = out / f"{entry.stem}_frames.csv"
    kp_path = out / f"{entry.stem}_keypoints.npy"
    frames_df = pd.read_csv(frames_path) if frames_path.exists() else None
    keypoints = np.load(kp_path, allow_pickle=False) if kp_path.exists() else None
    if frames_df is not None and len(frames_df):
        num_frames = max(num_frames, int(frames_df["frame"].max()) + 1)
    windows = _window_data(df)
    people = person_data(df, windows, frames_df, keypoints, num_frames)
    if not width and people:  # no video: size the canvas around the boxes
        b = df.loc[:, ["box_x", "box_y", "box_w", "box_h"]].to_numpy(np.float64)
        width, height = int((b[:, 0] + b[:, 2]).max()) + 1, int((b[:, 1] + b[:, 3]).max()) + 1
    return {
        "kind": "video", "stem": entry.stem, "name": meta.get("video") or entry.stem,
        "fps": fps or 25.0, "num_frames": num_frames, "width": width or 640, "height": height or 360,
        "video": src, "note": note, "meta": meta, "subpixel": SUBPIXEL,
        "categories": list(CATEGORIES), "vad_names": list(VAD_NAMES), "edges": [list(e) for e in OPENPOSE_EDGES],
        "windows": windows, "people": people,
        "sources": {"windows": entry.table_path.name,
                    "frames": frames_path.name if frames_df is not None else None,
                    "keypoints": kp_path.name if keypoints is not None else None},
    }


def _inside(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _rel_url(out: Path, p: Path) -> str:
    try:
        rel = os.path.relpath(p.resolve(), out.resolve())
    except ValueError:  # another drive
        return p.resolve().as_uri()
    return "/".join(rel.split(os.sep)).replace("#", "%23").replace("?", "%3F")


def page_name(stem: str) -> str:
    return f"{stem}.html"


def write_results_view(out: str | Path, proxy: bool = True) -> Path:
    """Write ``out/index.html`` and one page per video of a ``beenet predict --out`` folder."""
    out = Path(out)
    if not out.is_dir():
        raise BeenetError(f"{out}: no such folder; give the --out folder of 'beenet predict'")
    entries, failures = find_videos(out)
    items = []
    for e in entries:
        data = video_page_data(out, e, proxy=proxy)
        depth = e.stem.count("/")
        data["home"] = "../" * depth + "index.html"
        page = out / page_name(e.stem)
        page.parent.mkdir(parents=True, exist_ok=True)
        write_text(page, render_page(f"{data['name']} - beenet", "video.js", data))
        items.append({"stem": e.stem, "page": page_name(e.stem), "name": data["name"],
                      "people": len(data["people"]), "windows": len(data["windows"]["person"]),
                      "duration_s": round(data["num_frames"] / data["fps"], 2) if data["fps"] else None,
                      "top": [[p["id"], p["colour"], p["top"]] for p in data["people"]],
                      "timeline": f"{e.stem}_timeline.png" if (out / f"{e.stem}_timeline.png").exists() else None,
                      "note": data["note"]})
    index = {"kind": "index", "title": f"beenet predictions: {html.escape(out.resolve().name)}",
             "videos": items, "failures": failures}
    return write_text(out / "index.html", render_page(index["title"], "index.js", index))


def media_map(out: Path) -> dict[str, Path]:
    """``_media/<stem><suffix>`` -> the input video, for videos outside ``out`` (for the server)."""
    m: dict[str, Path] = {}
    entries, _ = find_videos(out)
    for e in entries:
        try:
            _, meta = read_table(e.table_path)
        except (BeenetError, OSError, ValueError):
            continue
        v = locate_video(out, e, meta)
        if v is not None:
            m[f"_media/{e.stem}{v.suffix}"] = v
    return m
