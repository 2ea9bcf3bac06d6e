"""Pictures of a prediction: the annotated mp4 (and, from :mod:`beenet.inference.timeline`, the
timeline PNG: ``render_timeline`` is importable from here too).

The annotated video shows, per person and frame, the skeleton, the box, the person id, the top-3
emotions and three VAD bars of the window that covers the frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from beenet.inference.pose import Box, valid_mask
from beenet.inference.timeline import (
    VAD_COLOURS,
    person_colour,
    render_timeline,  # noqa: F401 - the timeline, importable from here as before
)
from beenet.labels import OPENPOSE_EDGES, VAD_NAMES, VAD_SCALE
from beenet.progress import progress

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.table import PredictionTable
    from beenet.inference.windows import PersonTrack

log = logging.getLogger(__name__)

class Drawable(Protocol):
    """What :func:`render_video` draws: a :class:`~beenet.inference.results.VideoResult` (which
    imports this module to write its pictures, so it is named here by what it holds)."""

    video: Path
    table: PredictionTable
    tracks: dict[int, PersonTrack]
    boxes: dict[int, dict[int, Box]]
    num_frames: int
    fps: float
    width: int
    height: int


def window_for_frames(table: "PredictionTable", num_frames: int) -> dict[int, np.ndarray]:
    """``person_id -> [num_frames]`` row position of the window shown at each frame (-1 = none).

    Among the windows that cover a frame, the one whose centre is closest wins, so the labels
    change halfway through an overlap rather than at a window edge.
    """
    out: dict[int, np.ndarray] = {}
    if len(table) == 0:
        return out
    pids = table["person_id"].to_numpy()
    starts = table["start_frame"].to_numpy()
    ends = table["end_frame"].to_numpy()
    frames = np.arange(num_frames)
    for pid in np.unique(pids):
        rows = np.flatnonzero(pids == pid)
        best = np.full(num_frames, -1, dtype=np.int64)
        dist = np.full(num_frames, np.inf)
        for r in rows:
            s, e = int(starts[r]), int(ends[r])
            centre = (s + e) / 2.0
            seg = slice(max(s, 0), min(e + 1, num_frames))
            d = np.abs(frames[seg] - centre)
            better = d < dist[seg]
            best[seg] = np.where(better, r, best[seg])
            dist[seg] = np.where(better, d, dist[seg])
        out[int(pid)] = best
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Overlap area of two ``(x, y, w, h)`` rectangles."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def place_panels(boxes: list[tuple[float, float, float, float]], sizes: list[tuple[float, float]],
                 width: int, height: int) -> list[tuple[float, float]]:
    """Top-left corners of one label panel per person (``sizes``: panel width, height), in order,
    each inside the frame: the first place, in the order above the box, below it, a panel's height
    further above or below, beside it (right, then left), inside it at its bottom (each row
    left-aligned with the box, then shifted along), that covers no panel placed before it, not the
    top quarter of the box (the head) and no other person's box; failing that, as many of these as
    can be kept, in that order, with the least overlap."""
    placed: list[tuple[float, float, float, float]] = []
    out: list[tuple[float, float]] = []
    for i, ((x, y, w, h), (pw, ph)) in enumerate(zip(boxes, sizes)):
        def clamp(px: float, py: float) -> tuple[float, float]:
            return min(max(0.0, px), max(0.0, width - pw)), min(max(0.0, py), max(0.0, height - ph))

        rows = []
        if y - ph - 2 >= 0:
            rows.append(y - ph - 2)
        if y + h + 2 + ph <= height:
            rows.append(y + h + 2)
        rows += [r for r in (y - 2 * ph - 4, y + h + ph + 4) if 0 <= r <= height - ph]  # a second row out
        shifts = [x, x + w - pw, x - pw / 2, x + w - pw / 2, x - pw - 2, x + w + 2, x - 2 * pw - 4, x + w + pw + 4]
        candidates = [clamp(px, py) for py in rows for px in shifts]
        candidates += [clamp(x + w + 2, y), clamp(x - pw - 2, y)]
        candidates.append(clamp(x, min(y + h, height) - ph - 2))
        head = (x, y, w, h / 4)

        others = boxes[:i] + boxes[i + 1:]

        def cost(k: int) -> tuple:
            rect = (candidates[k][0], candidates[k][1], pw, ph)
            covered = sum(_overlap(rect, q) for q in placed)
            people = sum(_overlap(rect, b) for b in others)
            return covered > 0, _overlap(rect, head) > 0, people > 0, covered, people, k

        pick = candidates[min(range(len(candidates)), key=cost)]
        placed.append((pick[0], pick[1], pw, ph))
        out.append(pick)
    return out


def draw_people(frame: np.ndarray, people: Iterable[tuple[int, np.ndarray | None, tuple | None, list[tuple[str, float]] | None, np.ndarray | None]]) -> np.ndarray:
    """Draw on a copy of ``frame``: per person (id, keypoints [18,3], box, top-3, vad[3]); the
    label panels are placed so that they do not cover each other (:func:`place_panels`)."""
    from PIL import Image, ImageDraw, ImageFont  # lazy: Pillow, loaded only to draw

    img = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(img, "RGBA")
    H, W = frame.shape[:2]
    size = max(10, min(28, H // 36))
    font = ImageFont.load_default(size=size)
    lw = max(2, H // 240)
    line_h = size + 4
    bar_h = max(4, size // 2)
    panels = []  # (colour, box, lines, vad, panel size)
    for pid, kp, box, top, vad in people:
        colour = person_colour(pid)
        if kp is not None:
            ok = valid_mask(kp)
            for a, b in OPENPOSE_EDGES:
                if ok[a] and ok[b]:
                    draw.line([tuple(kp[a, :2]), tuple(kp[b, :2])], fill=colour + (255,), width=lw)
            r = lw + 1
            for j in np.flatnonzero(ok):
                x, y = kp[j, :2]
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255, 255), outline=colour + (255,))
        if box is None:
            continue
        x, y, w, h = box
        draw.rectangle([x, y, x + w, y + h], outline=colour + (255,), width=lw)
        lines = [f"person {pid}"]
        if top:
            lines += [f"{name} {score:.2f}" for name, score in top]
        n_bars = 3 if vad is not None else 0
        panel_w = max(max(font.getbbox(t)[2] for t in lines) + 12, 8 * size)
        panel_h = line_h * len(lines) + n_bars * (bar_h + 3) + 8
        panels.append((colour, tuple(float(v) for v in box), lines, vad, (panel_w, panel_h)))
    corners = place_panels([p[1] for p in panels], [p[4] for p in panels], W, H)
    for (colour, _, lines, vad, (panel_w, panel_h)), (px, py) in zip(panels, corners):
        draw.rectangle([px, py, px + panel_w, py + panel_h], fill=(0, 0, 0, 150))
        draw.rectangle([px, py, px + 4, py + panel_h], fill=colour + (255,))
        for i, t in enumerate(lines):
            draw.text((px + 8, py + 3 + i * line_h), t, fill=(255, 255, 255, 255), font=font)
        if vad is not None:
            by = py + 4 + line_h * len(lines)
            full = panel_w - 16 - size
            for k, (name, c) in enumerate(zip(VAD_NAMES, VAD_COLOURS)):
                v = float(np.clip(vad[k] / VAD_SCALE, 0.0, 1.0))
                yy = by + k * (bar_h + 3)
                draw.text((px + 8, yy - 2), name[0].upper(), fill=(255, 255, 255, 255),
                          font=ImageFont.load_default(size=max(8, bar_h + 2)))
                x0 = px + 8 + size
                draw.rectangle([x0, yy, x0 + full, yy + bar_h], fill=(255, 255, 255, 60))
                draw.rectangle([x0, yy, x0 + full * v, yy + bar_h], fill=c + (255,))
    return np.asarray(img)


#: Annotated videos smaller than this are upscaled by an integer factor before drawing.
MIN_RENDER_HEIGHT = 480


def render_video(result: Drawable, out_path: str | Path, show_progress: bool | None = None) -> Path:
    """Write the annotated mp4 of ``result`` (decodes the source video once more, streaming)."""
    from PIL import Image  # lazy: Pillow, loaded only to draw

    from beenet.media.video import VideoReader  # lazy: PyAV, loaded only to render a video
    from beenet.media.video_writer import VideoWriter  # lazy: PyAV, loaded only to render a video

    table = result.table
    chosen = window_for_frames(table, result.num_frames)
    tops = table.top_emotions(3) if len(table) else []
    vad = table.vad.to_numpy(dtype=np.float64) if len(table) else np.zeros((0, 3))
    # Small videos are upscaled (integer factor) so the labels stay readable beside the people.
    scale = max(1, math.ceil(MIN_RENDER_HEIGHT / max(result.height, 1)))
    W, H = result.width * scale, result.height * scale
    W2, H2 = W + (W % 2), H + (H % 2)
    out_path = Path(out_path)
    with VideoReader(result.video) as reader, VideoWriter(out_path, result.fps, W2, H2,
                                                                 audio_from=result.video) as writer:
        bar = progress(total=result.num_frames, desc=f"render {Path(result.video).name}",
                       disable=None if show_progress is None else not show_progress)
        for idx, frame in reader.iter_frames(0, result.num_frames):
            people = []
            for pid, tr in result.tracks.items():
                if idx >= len(tr.present) or not tr.present[idx]:
                    continue
                row = int(chosen[pid][idx]) if pid in chosen else -1
                box = result.boxes.get(pid, {}).get(idx)
                kp = tr.keypoints[idx]
                if scale > 1:
                    kp = kp.copy()
                    kp[:, :2] *= scale
                    box = None if box is None else tuple(float(v) * scale for v in box)
                people.append((pid, kp, box,
                               tops[row] if row >= 0 else None, vad[row] if row >= 0 else None))
            if scale > 1:
                frame = np.asarray(Image.fromarray(frame).resize((W, H), Image.BILINEAR))
            drawn = draw_people(frame, people)
            if (W2, H2) != (W, H):
                drawn = np.pad(drawn, ((0, H2 - H), (0, W2 - W), (0, 0)))
            writer.write(drawn)
            bar.update(1)
        bar.close()
    return out_path
