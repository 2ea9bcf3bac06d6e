"""Pictures of a prediction: the annotated mp4 and the timeline PNG.

The annotated video shows, per person and frame, the skeleton, the box, the person id, the top-3
emotions and three VAD bars of the window that covers the frame. The timeline shows per person a
heat map of the 26 categories over time, every window drawn over its real extent (where windows
overlap, the one whose centre is nearest), and the valence / arousal / dominance curves.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from beenet.atomic import atomic_open
from beenet.inference.pose import Box, valid_mask
from beenet.labels import CATEGORIES, OPENPOSE_EDGES, VAD_NAMES, VAD_SCALE
from beenet.progress import progress

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.table import PredictionTable
    from beenet.inference.windows import PersonTrack

log = logging.getLogger(__name__)

#: Distinct colours (RGB) for person ids (tab10).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
_VAD_COLOURS = ((46, 160, 67), (230, 126, 34), (52, 120, 200))

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


def person_colour(person_id: int) -> tuple[int, int, int]:
    return PALETTE[int(person_id) % len(PALETTE)]


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
            for k, (name, c) in enumerate(zip(VAD_NAMES, _VAD_COLOURS)):
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


def render_timeline(table: "PredictionTable", out_path: str | Path | None = None, duration_s: float | None = None,
                    title: str | None = None, max_people: int = 8,
                    unseen: dict[int, list[tuple[float, float]]] | None = None) -> Any:
    """The timeline of a table: per person a category heat map over time and the VAD curves, as a
    matplotlib ``Figure`` (a notebook shows it as the cell's result), also written as a PNG to
    ``out_path`` (atomically) when one is given. ``unseen``: per person, the times (seconds) they
    were not seen (:func:`unseen_times`), greyed out: a window's scores are not drawn over its
    frames before the person appeared."""
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
    title = title or str(getattr(table, "video", "") or (out_path.stem if out_path is not None else "timeline"))
    fig = _timeline_figure(table, duration_s, title, max_people, unseen or {})
    if out_path is not None:
        _save_png(fig, out_path)
    return fig


def _timeline_figure(table: "PredictionTable", duration_s: float | None, title: str, max_people: int,
                     unseen: dict[int, list[tuple[float, float]]]) -> Any:
    from matplotlib.figure import Figure  # lazy: matplotlib (no pyplot: no global state, no GUI backend)
    from matplotlib.lines import Line2D  # lazy: matplotlib, loaded only to draw

    if len(table) == 0:
        fig = Figure(figsize=(8, 2))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}\nno person found", ha="center", va="center")
        return fig
    counts = table.groupby("person_id").size().sort_values(ascending=False, kind="stable")
    people = sorted(counts.index[:max_people].tolist())
    end = float(table["end_s"].max()) if duration_s is None else float(duration_s)
    fig_h = 1.25 + 5.2 * len(people)
    # Margins in inches, fixed: matplotlib's constrained layout solved them at every draw and took
    # 2.7 of the 4.3 s this figure cost for 8 people (docs/predict.md, "Speed").
    fig = Figure(figsize=(12, fig_h))
    outer = fig.add_gridspec(len(people), 2, width_ratios=[60, 1], left=1.05 / 12, right=1 - 0.45 / 12,
                             top=1 - 1.0 / fig_h, bottom=0.45 / fig_h, wspace=0.02, hspace=0.85 / 4.35)
    heat_im = handles = None
    for i, pid in enumerate(people):
        grid = outer[i, 0].subgridspec(2, 1, height_ratios=[3.4, 1.4], hspace=0.12)
        rows = table[table["person_id"] == pid].sort_values("start_s")
        ax = fig.add_subplot(grid[0])
        heat_im = _heat_panel(ax, rows, end, pid)
        vx = fig.add_subplot(grid[1], sharex=ax)
        handles = _vad_panel(vx, rows)
        for a, b in unseen.get(int(pid), ()):  # not seen: grey over the heat map, behind the lines
            ax.axvspan(a, b, facecolor="#dddddd", edgecolor="none", zorder=3)
            vx.axvspan(a, b, facecolor="#eeeeee", edgecolor="none", zorder=0)
    cax = fig.add_subplot(outer[0, 1].subgridspec(2, 1, height_ratios=[3.4, 1.4], hspace=0.12)[0])
    fig.colorbar(heat_im, cax=cax).ax.tick_params(labelsize=6)
    extra = f" (showing {len(people)} of {len(counts)} people)" if len(counts) > len(people) else ""
    fig.suptitle(f"{title}{extra}", fontsize=11, y=1 - 0.2 / fig_h, va="top")
    # One legend for every VAD panel (the same colours in all), under the title.
    fig.legend([*handles, Line2D([], [], color="grey", lw=0.8, alpha=0.5)], [*VAD_NAMES, "each window's extent"],
               loc="upper center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1 - 0.45 / fig_h))
    return fig


def _heat_panel(ax: Any, rows: Any, end: float, pid: int) -> Any:
    """One person's category heat map on ``ax``, grey where the person was not scored. Its axes
    draw no ticks: the category names are one collection of glyph outlines (:func:`_category_names`)
    and the time axis is the VAD panel's below; tick labels were most of this figure's cost."""
    from matplotlib.collections import PathCollection  # lazy: matplotlib, loaded only to draw
    from matplotlib.transforms import IdentityTransform, blended_transform_factory  # lazy: matplotlib, to draw

    starts, ends = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
    scores = rows[list(CATEGORIES)].to_numpy(dtype=np.float64)
    edges, heat = window_heat(starts, ends, scores, end)
    im = ax.pcolormesh(edges, np.arange(len(CATEGORIES) + 1) - 0.5, np.ma.masked_invalid(heat),
                       cmap="magma", vmin=0.0, vmax=1.0, shading="flat", antialiased=False)
    ax.set_ylim(len(CATEGORIES) - 0.5, -0.5)  # the first category on top
    ax.set_xlim(0, end)
    ax.set_facecolor("#dddddd")
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    names = PathCollection(_category_names(6.0), sizes=[1.0], offsets=[(0.0, k) for k in range(len(CATEGORIES))],
                           offset_transform=blended_transform_factory(ax.transAxes, ax.transData),
                           transform=IdentityTransform(),  # the paths are in points, scaled by the dpi
                           facecolors="black", edgecolors="none", linewidths=0, clip_on=False)
    ax.add_collection(names, autolim=False)
    # y given: matplotlib does not look for tick labels above the axes to place the title.
    ax.set_title(f"person {pid}: categories (top: {', '.join(_overall_top(scores, 3))})",
                 fontsize=9, loc="left", color=np.array(person_colour(pid)) / 255.0, y=1.0)
    return im


def _vad_panel(vx: Any, rows: Any) -> list[Any]:
    """One person's valence / arousal / dominance on ``vx``: a point per window at its centre,
    joined, and a faint line over each window's extent. Returns the three curves (for the legend)."""
    from matplotlib.ticker import MaxNLocator  # lazy: matplotlib, loaded only to draw
    from matplotlib.transforms import ScaledTranslation  # lazy: matplotlib, loaded only to draw

    starts, ends = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
    centres = (starts + ends) / 2.0
    vad = rows[list(VAD_NAMES)].to_numpy(dtype=np.float64)
    colours = np.array(_VAD_COLOURS) / 255.0
    curves = [vx.plot(centres, vad[:, k], marker="o", ms=2.5, lw=1.4, color=colours[k], label=name)[0]
              for k, name in enumerate(VAD_NAMES)]
    vx.hlines(vad.T.ravel(), np.tile(starts, 3), np.tile(ends, 3), colors=np.repeat(colours, len(starts), axis=0),
              lw=0.8, alpha=0.5)
    vx.set_ylim(0, VAD_SCALE)
    vx.set_yticks(np.linspace(0, VAD_SCALE, 3))
    vx.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]))
    vx.tick_params(labelsize=8)
    vx.grid(alpha=0.3)
    # Axis labels at fixed offsets (points) from the axes: otherwise matplotlib measures the tick
    # labels at every draw to place them.
    points = vx.get_figure().dpi_scale_trans
    vx.set_xlabel("time (s)", fontsize=8)
    vx.xaxis.set_label_coords(0.5, 0.0, transform=vx.transAxes + ScaledTranslation(0, -19 / 72, points))
    vx.set_ylabel("VAD", fontsize=8)
    vx.yaxis.set_label_coords(0.0, 0.5, transform=vx.transAxes + ScaledTranslation(-20 / 72, 0, points))
    return curves


@functools.lru_cache(maxsize=4)
def _category_names(size: float) -> list[Any]:
    """The category names as glyph outlines in points, right-aligned 3 pt left of ``(0, 0)`` and
    centred on it vertically: drawn as one collection per person, they cost one path draw instead
    of 26 tick labels' text layout and glyph rendering (made once per process)."""
    from matplotlib.font_manager import FontProperties  # lazy: matplotlib, loaded only to draw
    from matplotlib.path import Path as MplPath  # lazy: matplotlib, loaded only to draw
    from matplotlib.textpath import TextPath  # lazy: matplotlib, loaded only to draw

    prop = FontProperties(size=size)
    out = []
    for name in CATEGORIES:
        path = TextPath((0, 0), name, size=size, prop=prop)
        x1 = path.vertices[path.codes != MplPath.CLOSEPOLY, 0].max()  # not get_extents: 20 ms a name
        out.append(MplPath(path.vertices + (-x1 - 3.0, -0.36 * size), path.codes))
    return out


def seen_spans(frames: np.ndarray, bridge: int) -> np.ndarray:
    """The spans ``[first, last]`` (int32 ``[k, 2]``) of sorted frame numbers, gaps of up to
    ``bridge`` frames closed: where a person was seen."""
    f = np.unique(np.asarray(frames, dtype=np.int64))
    if not len(f):
        return np.zeros((0, 2), np.int32)
    cut = np.flatnonzero(np.diff(f) > bridge + 1)
    return np.stack([f[np.r_[0, cut + 1]], f[np.r_[cut, len(f) - 1]]], 1).astype(np.int32)


def unseen_times(frames: np.ndarray, fps: float, end: float) -> list[tuple[float, float]]:
    """The times in ``0 .. end`` seconds when a person seen on ``frames`` was not (gaps under half
    a second closed, as the viewer draws them)."""
    fps = fps or 25.0
    spans = seen_spans(frames, max(1, int(round(0.5 * fps))))
    out, t = [], 0.0
    for first, last in spans.tolist():
        if first / fps > t:
            out.append((t, first / fps))
        t = (last + 1) / fps
    if t < end:
        out.append((t, end))
    return out


def window_heat(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray,
                end: float) -> tuple[np.ndarray, np.ndarray]:
    """One person's heat map with every window over its real extent (``start_s .. end_s``).

    Returns the time edges (every window start and end, plus 0 and ``end``) and ``[K, len(edges)
    - 1]`` scores: each segment between two edges shows the window that covers it whose centre
    is nearest the segment's middle, NaN where no window covers it (the person was not scored).
    """
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    edges = np.unique(np.concatenate([[0.0, max(end, float(ends.max()) if len(ends) else 0.0)], starts, ends]))
    if len(edges) < 2:
        edges = np.array([0.0, max(end, 1e-3)])
    mids = (edges[:-1] + edges[1:]) / 2.0
    centres = (starts + ends) / 2.0
    heat = np.full((scores.shape[1], len(mids)), np.nan)
    for c, t in enumerate(mids):
        inside = np.flatnonzero((starts <= t) & (ends >= t))
        if len(inside):
            heat[:, c] = scores[inside[np.argmin(np.abs(centres[inside] - t))]]
    return edges, heat


def _save_png(fig: Any, out_path: Path) -> Path:
    """Save atomically: a failed write (disk full) leaves no half PNG under ``out_path``. zlib level
    1, not Pillow's 6: half the encoding time (0.15 s instead of 0.3 s for 8 people) for a file
    5-20% larger."""
    with atomic_open(out_path, "wb") as fh:
        fig.savefig(fh, dpi=100, format="png", pil_kwargs={"compress_level": 1})
    return out_path


def _overall_top(scores: np.ndarray, k: int) -> list[str]:
    mean = scores.mean(axis=0)
    return [CATEGORIES[j] for j in np.argsort(-mean, kind="stable")[:k]]
