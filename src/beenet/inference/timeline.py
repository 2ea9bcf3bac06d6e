"""The timeline picture of a prediction, drawn with Pillow: per person a heat map of the 26
categories over time (every window over its real extent; where windows overlap, the one whose
centre is nearest: :func:`window_heat`) and the valence / arousal / dominance curves, greyed out
where the person was not seen (:func:`unseen_times`).

Pillow, not matplotlib: the figure is a fixed layout of rectangles, lines and short labels, and
matplotlib's import, figure and PNG took 1.6-1.8 s of a 12 s ``beenet predict`` of 20 s of 720p
video on 2 cores; this draws the same picture in well under a tenth of that (docs/predict.md,
"Speed"). Lines and markers are drawn at twice the size and scaled down (antialiased); text is
DejaVu Sans (matplotlib's font) through Pillow's FreeType.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.atomic import atomic_open
from beenet.labels import CATEGORIES, VAD_NAMES, VAD_SCALE

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.table import PredictionTable

#: Distinct colours (RGB) for person ids (tab10).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
#: valence, arousal, dominance (RGB).
VAD_COLOURS: tuple[tuple[int, int, int], ...] = ((46, 160, 67), (230, 126, 34), (52, 120, 200))
#: matplotlib's "magma" colour map (256 RGB steps; by Nathaniel J. Smith, Stefan van der Walt and
#: Eric Firing, CC0), as matplotlib maps a score in 0..1 to it.
_MAGMA_HEX = (
    "00000401000501010601010802010902020b02020d03030f03031204041405041606051806051a07061c08071e090720"
    "0a08220b09240c09260d0a290e0b2b100b2d110c2f120d31130d34140e36150e38160f3b180f3d19103f1a10421c1044"
    "1d11471e114920114b21114e22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069"
    "36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f764510774710784910784a10794c117a4e117b4f127b"
    "51127c52137c54137d56147d57157e59157e5a167e5c167f5d177f5f187f601880621980641a80651a80671b80681c81"
    "6a1c816b1d816d1d816e1e81701f81721f817320817521817621817822817922827b23827c23827e2482802582812581"
    "8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80962c80982d80992d809b2e7f"
    "9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327daa337dab337cad347cae347bb0357bb2357bb3367ab5367a"
    "b73779b83779ba3878bc3978bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070"
    "d0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67e24d66e34e65e44f64e55064"
    "e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5eef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695c"
    "f56b5cf66c5cf66e5cf7705cf7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761"
    "fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6cfe9f6dfea16efea36ffea571"
    "fea772fea973feaa74feac76feae77feb078feb27afeb47bfeb67cfeb77efeb97ffebb81febd82febf84fec185fec287"
    "fec488fec68afec88cfeca8dfecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1"
    "fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8fcf7b9fcf9bbfcfbbdfcfdbf"
)
MAGMA: np.ndarray = np.frombuffer(bytes.fromhex("".join(_MAGMA_HEX)), np.uint8).reshape(256, 3)

WIDTH = 1200  #: the picture's width (px)
LEFT, RIGHT = 105, 1120  #: the panels' left and right edges (px): category names left, colour bar right
ROW_H = 11  #: px per category row of a heat map
HEAT_H = ROW_H * len(CATEGORIES)
VAD_H = 110  #: px of a VAD panel
TOP = 62  #: px above the first person (title and legend)
BLOCK = 500  #: px per person
GREY_HEAT, GREY_VAD, GRID = (221, 221, 221), (238, 238, 238), (231, 231, 231)
INK = (30, 30, 30)


def person_colour(person_id: int) -> tuple[int, int, int]:
    return PALETTE[int(person_id) % len(PALETTE)]


@dataclass(frozen=True)
class Panels:
    """Where one person is drawn (px, ``y`` down): the title's line, the heat map's and the VAD
    panel's top; both panels span ``LEFT .. RIGHT``."""

    title_y: int
    heat_y: int
    vad_y: int

    @staticmethod
    def of(k: int) -> "Panels":
        """The ``k``-th person's panels."""
        y = TOP + k * BLOCK
        return Panels(y, y + 18, y + 18 + HEAT_H + 10)


def timeline_height(people: int) -> int:
    return TOP + BLOCK * people - 20


@functools.lru_cache(maxsize=1)
def font_file() -> Path | None:
    """DejaVu Sans, the font matplotlib draws with (its wheel ships it; found without importing
    matplotlib): wide Latin, Greek and Cyrillic coverage for titles made of file names. None when
    it is not there (then Pillow's own font, Aileron, with fewer characters)."""
    spec = importlib.util.find_spec("matplotlib")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont  # lazy: Pillow, loaded only to draw

    path = font_file()
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size=size)
        except OSError:  # an unreadable font file: Pillow's own
            pass
    return ImageFont.load_default(size=size)


def render_timeline(table: PredictionTable, out_path: str | Path | None = None, duration_s: float | None = None,
                    title: str | None = None, max_people: int = 8,
                    unseen: dict[int, list[tuple[float, float]]] | None = None) -> Any:
    """The timeline of a table: per person a category heat map over time and the VAD curves, the
    ``max_people`` people with the most windows, as a ``PIL.Image.Image`` (RGB; a notebook shows
    it as the cell's result), also written as a PNG to ``out_path`` (atomically) when one is
    given. ``unseen``: per person, the times (seconds) they were not seen (:func:`unseen_times`),
    greyed out: a window's scores are not drawn over its frames before the person appeared."""
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
    title = title or str(getattr(table, "video", "") or (out_path.stem if out_path is not None else "timeline"))
    img = timeline_image(table, duration_s, title, max_people, unseen or {})
    if out_path is not None:
        with atomic_open(out_path, "wb") as fh:  # a failed write (disk full) leaves no half PNG
            img.save(fh, format="PNG", compress_level=3)
    return img


def shown_people(table: PredictionTable, max_people: int) -> tuple[list[int], int]:
    """The ids of the ``max_people`` people with the most windows (ties: the lower id), sorted,
    and how many people the table has."""
    ids, counts = np.unique(table["person_id"].to_numpy(), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return sorted(int(i) for i in ids[order[:max_people]]), len(ids)


def timeline_image(table: PredictionTable, duration_s: float | None, title: str, max_people: int,
                   unseen: dict[int, list[tuple[float, float]]]) -> Any:
    """The picture of :func:`render_timeline`."""
    from PIL import Image, ImageDraw  # lazy: Pillow, loaded only to draw

    if len(table) == 0:
        img = Image.new("RGB", (800, 200), "white")
        ImageDraw.Draw(img).multiline_text((400, 100), f"{title}\nno person found", fill=INK, font=_font(15),
                                           anchor="mm", align="center")
        return img
    people, total = shown_people(table, max_people)
    end = float(table["end_s"].max()) if duration_s is None else float(duration_s)
    end = max(end, 1e-3)
    img = Image.new("RGB", (WIDTH, timeline_height(len(people))), "white")
    draw = ImageDraw.Draw(img)
    extra = f" (showing {len(people)} of {total} people)" if total > len(people) else ""
    draw.text((WIDTH / 2, 8), f"{title}{extra}", fill=INK, font=_font(15), anchor="ma")
    _legend(draw)
    pids = table["person_id"].to_numpy()
    for k, pid in enumerate(people):
        rows = table[pids == pid].sort_values("start_s", kind="stable")
        _person(img, draw, Panels.of(k), rows, end, pid, unseen.get(pid, ()))
    _colour_bar(img, draw, Panels.of(0).heat_y)
    return img


def _person(img: Any, draw: Any, p: Panels, rows: Any, end: float, pid: int,
            unseen: Any) -> None:
    """One person's title, heat map and VAD panel."""
    starts, ends = rows["start_s"].to_numpy(np.float64), rows["end_s"].to_numpy(np.float64)
    scores = rows[list(CATEGORIES)].to_numpy(np.float64)
    vad = rows[list(VAD_NAMES)].to_numpy(np.float64)
    top = ", ".join(_overall_top(scores, 3))
    draw.text((LEFT, p.title_y), f"person {pid}: categories (top: {top})", fill=person_colour(pid), font=_font(12))
    img.paste(_heat_image(starts, ends, scores, end, unseen), (LEFT, p.heat_y))
    draw.rectangle([LEFT - 1, p.heat_y - 1, RIGHT, p.heat_y + HEAT_H], outline=INK)
    img.paste(INK, (0, p.heat_y), _category_names())
    _vad_panel(img, draw, p.vad_y, (starts, ends, vad), end, unseen)


@functools.lru_cache(maxsize=1)
def _category_names() -> Any:
    """The category names beside a heat map, each centred on its row and right-aligned 4 px left
    of the map, as a mask (drawn once per process, pasted for every person)."""
    from PIL import Image, ImageDraw  # lazy: Pillow, loaded only to draw

    mask = Image.new("L", (LEFT, HEAT_H), 0)
    draw, font = ImageDraw.Draw(mask), _font(9)
    for k, name in enumerate(CATEGORIES):
        draw.text((LEFT - 4, k * ROW_H + ROW_H / 2), name, fill=255, font=font, anchor="rm")
    return mask


def _unseen_columns(t: np.ndarray, unseen: Any) -> np.ndarray:
    """Which of the times ``t`` fall in an ``unseen`` span."""
    mask = np.zeros(len(t), bool)
    for a, b in unseen:
        mask |= (t >= a) & (t <= b)
    return mask


def _heat_image(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, end: float, unseen: Any) -> Any:
    """The heat map: a row per category, a column per pixel of time, grey where no window is or
    the person was not seen."""
    from PIL import Image  # lazy: Pillow, loaded only to draw

    width = RIGHT - LEFT
    edges, heat = window_heat(starts, ends, scores, end)
    t = (np.arange(width) + 0.5) * (end / width)
    seg = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, heat.shape[1] - 1)
    cols = heat[:, seg]
    # as matplotlib maps 0..1 to a 256-step map: floor(v * 256), 1.0 the last step
    rgb = MAGMA[np.clip((np.nan_to_num(cols, nan=0.0) * 256).astype(np.int64), 0, 255)]
    rgb[np.isnan(cols)] = GREY_HEAT
    rgb[:, _unseen_columns(t, unseen)] = GREY_HEAT
    return Image.fromarray(np.ascontiguousarray(np.repeat(rgb, ROW_H, axis=0)))


def _vad_panel(img: Any, draw: Any, y: int, windows: tuple[np.ndarray, np.ndarray, np.ndarray], end: float,
               unseen: Any) -> None:
    """The VAD panel at ``y``: a point per window at its centre, joined, and a faint line over
    each window's extent, drawn at twice the size and scaled down; its ticks and labels."""
    from PIL import Image, ImageDraw  # lazy: Pillow, loaded only to draw

    starts, ends, vad = windows
    width, s = RIGHT - LEFT, 2
    panel = Image.new("RGB", (width * s, VAD_H * s), "white")
    d = ImageDraw.Draw(panel)

    def px(t: np.ndarray | float) -> np.ndarray:
        return np.clip(np.asarray(t, np.float64) / end, 0.0, 1.0) * (width * s)

    def py(v: np.ndarray | float) -> np.ndarray:
        return (1.0 - np.clip(np.asarray(v, np.float64) / VAD_SCALE, 0.0, 1.0)) * (VAD_H * s - 1)

    for a, b in unseen:
        d.rectangle([float(px(a)), 0, float(px(b)), VAD_H * s], fill=GREY_VAD)
    ticks = time_ticks(end)
    for x in px(np.array(ticks)).tolist():
        d.line([(x, 0), (x, VAD_H * s)], fill=GRID, width=s)
    d.line([(0, VAD_H * s / 2), (width * s, VAD_H * s / 2)], fill=GRID, width=s)
    centres = (starts + ends) / 2.0
    for k, colour in enumerate(VAD_COLOURS):
        faint = tuple(round(255 - 0.5 * (255 - c)) for c in colour)
        for a, b, v in zip(px(starts).tolist(), px(ends).tolist(), py(vad[:, k]).tolist()):
            d.line([(a, v), (b, v)], fill=faint, width=s)
    for k, colour in enumerate(VAD_COLOURS):
        points = list(zip(px(centres).tolist(), py(vad[:, k]).tolist()))
        if len(points) > 1:
            d.line(points, fill=colour, width=2 * s, joint="curve")
        r = 1.8 * s
        for x, v in points:
            d.ellipse([x - r, v - r, x + r, v + r], fill=colour)
    img.paste(panel.reduce(s), (LEFT, y))
    draw.rectangle([LEFT - 1, y - 1, RIGHT, y + VAD_H], outline=INK)
    _vad_axes(img, draw, y, ticks, end)


def _vad_axes(img: Any, draw: Any, y: int, ticks: list[float], end: float) -> None:
    """The VAD panel's ticks, their labels and the axis names."""
    font = _font(11)
    for v in (0.0, VAD_SCALE / 2, float(VAD_SCALE)):
        yy = y + (1.0 - v / VAD_SCALE) * (VAD_H - 1)
        draw.line([(LEFT - 4, yy), (LEFT - 1, yy)], fill=INK)
        draw.text((LEFT - 6, yy), f"{v:g}", fill=INK, font=font, anchor="rm")
    for t in ticks:
        x = LEFT + t / end * (RIGHT - LEFT)
        draw.line([(x, y + VAD_H), (x, y + VAD_H + 4)], fill=INK)
        draw.text((x, y + VAD_H + 6), f"{t:g}", fill=INK, font=font, anchor="ma")
    draw.text(((LEFT + RIGHT) / 2, y + VAD_H + 22), "time (s)", fill=INK, font=font, anchor="ma")
    _upright_text(img, "VAD", LEFT - 36, y + VAD_H // 2, font)


def _upright_text(img: Any, text: str, x: int, y: int, font: Any) -> None:
    """``text`` turned a quarter left (read bottom to top), centred on ``(x, y)``."""
    from PIL import Image, ImageDraw  # lazy: Pillow, loaded only to draw

    _, _, x1, y1 = font.getbbox(text)
    mask = Image.new("L", (x1 + 2, y1 + 2), 0)
    ImageDraw.Draw(mask).text((1, 1), text, fill=255, font=font)
    mask = mask.rotate(90, expand=True)
    img.paste(INK, (x - mask.width // 2, y - mask.height // 2), mask)


def _legend(draw: Any) -> None:
    """One legend for every VAD panel (the same colours in all), under the title."""
    font = _font(11)
    grey = (191, 191, 191)
    items = [(name, colour, True) for name, colour in zip(VAD_NAMES, VAD_COLOURS)]
    items.append(("each window's extent", grey, False))
    widths = [32 + draw.textlength(name, font=font) + 26 for name, _, _ in items]
    x, y = (WIDTH - sum(widths)) / 2, 40
    for (name, colour, point), w in zip(items, widths):
        draw.line([(x, y), (x + 24, y)], fill=colour, width=2 if point else 1)
        if point:
            draw.ellipse([x + 10, y - 2, x + 14, y + 2], fill=colour)
        draw.text((x + 30, y), name, fill=INK, font=font, anchor="lm")
        x += w


def _colour_bar(img: Any, draw: Any, y: int) -> None:
    """The heat maps' colour scale, beside the first one."""
    from PIL import Image  # lazy: Pillow, loaded only to draw

    x0, w = RIGHT + 12, 14
    ramp = MAGMA[np.linspace(255, 0, HEAT_H).round().astype(np.int64)]  # 1.0 at the top
    img.paste(Image.fromarray(np.ascontiguousarray(np.repeat(ramp[:, None], w, axis=1))), (x0, y))
    draw.rectangle([x0 - 1, y - 1, x0 + w, y + HEAT_H], outline=INK)
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        yy = y + (1.0 - v) * (HEAT_H - 1)
        draw.line([(x0 + w, yy), (x0 + w + 3, yy)], fill=INK)
        draw.text((x0 + w + 5, yy), f"{v:.1f}", fill=INK, font=_font(9), anchor="lm")


def time_ticks(end: float, most: int = 8) -> list[float]:
    """Ticks from 0 to ``end`` seconds, at most about ``most`` steps, a step of 1, 2 or 5 times a
    power of ten."""
    raw = max(end, 1e-9) / most
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    return [round(i * step, 10) for i in range(int(math.floor(end / step + 1e-9)) + 1)]


def _overall_top(scores: np.ndarray, k: int) -> list[str]:
    mean = scores.mean(axis=0)
    return [CATEGORIES[j] for j in np.argsort(-mean, kind="stable")[:k]]


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
