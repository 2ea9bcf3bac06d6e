"""The labelling page: each video with the people pass 1 tracked in it, as one static folder.

:func:`write_label_page` writes ``PAGE/index.html`` (script and styles inlined, the data embedded
as JSON: per video its name as label rows use it, fps, frame count, size, and per tracked person
the frames and a box per frame, drawn from the joints), and a browser-playable copy of a video
browsers cannot play (:mod:`beenet.view.proxy`). The videos themselves are served from where they
lie under ``/_media/<k>/<file>`` (the returned media map), as ``beenet view`` serves input videos.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from beenet.atomic import write_text
from beenet.importing.tracks import Tracked
from beenet.labelling.store import VideoPeople
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES
from beenet.view.page import embed_json, static
from beenet.view.proxy import make_proxy, probe

#: A box drawn from the joints grows by these fractions of its height above (the head's top is no
#: joint) and on the other sides.
PAD_TOP, PAD_SIDE = 0.15, 0.06


@dataclass
class LabelPage:
    """The page written: its file, the videos it serves from elsewhere, the videos by row name."""

    index: Path
    media: dict[str, Path]
    videos: dict[str, VideoPeople]


def label_static(name: str) -> str:
    """A file shipped in ``beenet/labelling/static``."""
    return resources.files("beenet.labelling").joinpath("static", name).read_text(encoding="utf-8")


def row_names(found: dict[str, Path]) -> dict[Path, str]:
    """The name label rows give each video: of the names ``beenet import`` resolves (from
    :func:`~beenet.importing.build.find_videos`), the file name where it is unique, else the
    shortest (the path inside a folder given)."""
    by_path: dict[Path, list[str]] = {}
    for name, path in found.items():
        by_path.setdefault(path, []).append(name)
    return {path: min(names, key=lambda n: ("/" in n or "\\" in n, len(n), n)) for path, names in by_path.items()}


def person_boxes(tracked: Tracked) -> list[dict[str, Any]]:
    """Per tracked person: ``id``, frames ``f`` and boxes ``b`` (``x0, y0, x1, y1`` per frame,
    flat, whole pixels) around the joints seen, padded; ``i`` 1 where the tracker filled the frame in."""
    people = []
    for pid in tracked.person_ids:
        rows = tracked.rows[tracked.rows[:, 1] == pid]
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        kp = rows[:, 3:].reshape(len(rows), NUM_JOINTS, 3)
        seen = kp[:, :, 2] > 0
        boxes = []
        for k, s in zip(kp, seen):
            pts = k[s] if s.any() else k
            x0, y0 = pts[:, 0].min(), pts[:, 1].min()
            x1, y1 = pts[:, 0].max(), pts[:, 1].max()
            h = max(y1 - y0, 1.0)
            boxes += [max(0.0, x0 - PAD_SIDE * h), max(0.0, y0 - PAD_TOP * h),
                      min(float(tracked.width), x1 + PAD_SIDE * h), min(float(tracked.height), y1 + PAD_SIDE * h)]
        people.append({"id": int(pid), "f": rows[:, 0].astype(int).tolist(),
                       "b": [int(round(v)) for v in boxes], "i": rows[:, 2].astype(int).tolist()})
    return people


def _source(k: int, video: Path, page: Path, media: dict[str, Path], proxy: bool) -> tuple[str, str]:
    """The URL the page plays ``video`` from, and a note when it is a transcoded copy."""
    if proxy and not probe(video).playable(video):
        copy = make_proxy(video, page / f"{k}_{video.stem}_proxy.mp4")
        return copy.name, f"{video.name} plays from a browser-playable copy, {copy.name}"
    url = f"_media/{k}/{video.name}"
    media[url] = video.resolve()
    return url, ""


def render(data: dict[str, Any]) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(data['title'])}</title>"
            f"<style>{static('view.css')}\n{label_static('label.css')}</style></head>\n<body>\n"
            f"<script>window.BEENET={embed_json(data)};</script>\n"
            f"<script>{static('common.js')}\n{label_static('label.js')}</script>\n</body></html>\n")


def write_label_page(page: str | Path, videos: Sequence[tuple[Path, str, Tracked]], labels: str | Path,
                     annotator: str = "", proxy: bool = True) -> LabelPage:
    """Write ``page/index.html`` for ``videos`` (path, row name, pass 1's people) whose labels go to
    ``labels`` (named on the page)."""
    page = Path(page)
    page.mkdir(parents=True, exist_ok=True)
    media: dict[str, Path] = {}
    entries, known, notes = [], {}, []
    for k, (path, name, tracked) in enumerate(videos):
        src, note = _source(k, path, page, media, proxy)
        if note:
            notes.append(note)
        entries.append({"name": name, "src": src, "fps": tracked.fps, "num_frames": tracked.num_frames,
                        "width": tracked.width, "height": tracked.height, "people": person_boxes(tracked)})
        known[name] = VideoPeople(name, tracked.num_frames,
                                  {p: tracked.frames_of(p) for p in tracked.person_ids})
    pose = videos[0][2].settings.get("pose", {}) if videos else {}
    data = {"title": f"beenet label: {Path(labels).name}", "labels": str(labels), "annotator": annotator,
            "categories": list(CATEGORIES), "vad_names": list(VAD_NAMES), "videos": entries, "notes": notes,
            "pose": pose.get("name", "")}
    index = write_text(page / "index.html", render(data))
    return LabelPage(index, media, known)
