"""Drawing for the synthetic BoLD: scene backgrounds, COCO-like objects, and stick-figure people.

Everything here is pure drawing: *what* is in a clip (scene, objects, who feels what) is decided by
:mod:`beenet.data.synth.plan` under :mod:`beenet.data.synth.rules`, and *where* a body's joints are
by :mod:`beenet.data.synth.poses`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from beenet.data.synth.poses import (
    LANK, LELB, LEYE, LHIP, LKNE, LSHO, LWRI, NECK, NOSE, RANK, RELB, REYE, RHIP, RKNE, RSHO, RWRI,
)

Colour = tuple[int, int, int]


# ----------------------------------------------------------------------------------------------
# People
# ----------------------------------------------------------------------------------------------

_LIMBS = ((RSHO, RELB), (RELB, RWRI), (LSHO, LELB), (LELB, LWRI),
          (RHIP, RKNE), (RKNE, RANK), (LHIP, LKNE), (LKNE, LANK), (NECK, NOSE))

SHIRTS: tuple[Colour, ...] = (
    (220, 60, 50), (40, 110, 220), (250, 200, 40), (60, 180, 90), (240, 240, 240),
    (150, 70, 200), (250, 130, 30), (30, 30, 30), (20, 170, 190), (200, 90, 150),
)
SKINS: tuple[Colour, ...] = ((250, 215, 180), (225, 175, 130), (180, 125, 85), (120, 80, 55))
TROUSERS: tuple[Colour, ...] = ((40, 50, 90), (60, 60, 60), (110, 80, 50), (20, 20, 30), (150, 150, 140))


@dataclass(frozen=True)
class Look:
    """How a person is drawn: colours and line width."""

    shirt: Colour
    skin: Colour
    trousers: Colour
    width: int


def random_look(rng: np.random.Generator, height_px: float, faded: bool) -> Look:
    """Colours for one person; bystanders (``faded``) are greyer and thinner, like people far back."""
    shirt = SHIRTS[int(rng.integers(len(SHIRTS)))]
    skin = SKINS[int(rng.integers(len(SKINS)))]
    trousers = TROUSERS[int(rng.integers(len(TROUSERS)))]
    if faded:
        mix = lambda c: tuple(int(0.55 * v + 0.45 * 128) for v in c)  # noqa: E731
        shirt, skin, trousers = mix(shirt), mix(skin), mix(trousers)
    width = max(1, int(round(height_px * (0.035 if faded else 0.045))))
    return Look(shirt, skin, trousers, width)


def draw_person(draw: ImageDraw.ImageDraw, kp: np.ndarray, height_px: float, look: Look) -> None:
    """A stick figure from the pixel joints ``kp [18, 2]``: torso, limbs, head with eyes."""
    pt = lambda j: (float(kp[j, 0]), float(kp[j, 1]))  # noqa: E731
    draw.polygon([pt(RSHO), pt(LSHO), pt(LHIP), pt(RHIP)], fill=look.shirt)
    for a, b in _LIMBS:
        colour = look.trousers if a in (RHIP, LHIP, RKNE, LKNE) else look.shirt
        if (a, b) in ((RELB, RWRI), (LELB, LWRI), (NECK, NOSE)):
            colour = look.skin
        draw.line([pt(a), pt(b)], fill=colour, width=look.width, joint="curve")
    draw.line([pt(RHIP), pt(LHIP)], fill=look.trousers, width=look.width)
    hand = max(1.0, look.width * 0.8)
    for j in (RWRI, LWRI):
        x, y = pt(j)
        draw.ellipse([x - hand, y - hand, x + hand, y + hand], fill=look.skin)
    r = 0.065 * height_px
    hx = (kp[NOSE, 0] + kp[REYE, 0] + kp[LEYE, 0]) / 3.0
    hy = (kp[NOSE, 1] + kp[REYE, 1] + kp[LEYE, 1]) / 3.0
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=look.skin, outline=(40, 30, 30))
    e = max(0.6, 0.012 * height_px)
    for j in (REYE, LEYE):
        x, y = pt(j)
        draw.ellipse([x - e, y - e, x + e, y + e], fill=(20, 20, 20))


# ----------------------------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SceneLook:
    """Where the floor starts (fraction of the height) and the painter of the static background."""

    floor: float
    paint: Callable[[int, int, np.random.Generator], np.ndarray]


def _vgrad(h: int, w: int, top: Colour, bottom: Colour) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return np.broadcast_to(img, (h, w, 3)).copy()


def _noise(img: np.ndarray, rng: np.random.Generator, sd: float, y0: int = 0) -> None:
    img[y0:] += rng.normal(0.0, sd, size=img[y0:].shape[:2])[..., None]


def _paint_party(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (70, 20, 85), (150, 50, 115))
    fy = int(0.72 * h)
    img[fy:] = _vgrad(h - fy, w, (95, 55, 35), (70, 40, 25))
    for _ in range(max(8, w * h // 500)):  # confetti on the wall
        y, x = int(rng.integers(0, fy)), int(rng.integers(0, w))
        img[y:y + 2, x:x + 2] = SHIRTS[int(rng.integers(len(SHIRTS)))]
    return img


def _paint_stadium(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    sy = int(0.35 * h)
    img = np.zeros((h, w, 3))
    img[:sy] = (105, 105, 118)
    img[sy:] = (45, 145, 55)
    band = max(2, h // 18)
    rows = np.arange(sy, h)
    img[rows[((rows - sy) // band) % 2 == 1]] = (60, 165, 65)
    crowd = rng.integers(0, 255, size=(sy // 3, w // 3, 3))
    img[: (sy // 3) * 3, : (w // 3) * 3] = 0.35 * np.repeat(np.repeat(crowd, 3, 0), 3, 1) + 0.65 * 105
    ly = int(0.62 * h)
    img[ly:ly + 1] = (235, 235, 235)
    _noise(img, rng, 4.0, sy)
    return img


def _paint_beach(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (110, 175, 240), (195, 225, 250))
    sea, sand = int(0.40 * h), int(0.55 * h)
    img[sea:sand] = _vgrad(sand - sea, w, (25, 90, 170), (45, 130, 200))
    img[sand:] = (232, 210, 150)
    _noise(img, rng, 7.0, sand)
    yy, xx = np.mgrid[0:h, 0:w]
    r = 0.07 * h
    sun = (yy - 0.13 * h) ** 2 + (xx - 0.82 * w) ** 2 < r * r
    img[sun] = (255, 235, 90)
    return img


def _paint_home(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (230, 210, 175), (215, 195, 160))
    stripe = max(3, w // 24)
    cols = (np.arange(w) // stripe) % 2 == 1
    img[:, cols] -= 14
    fy = int(0.74 * h)
    img[fy:] = (145, 98, 62)
    plank = max(3, h // 20)
    img[fy::plank] = (110, 72, 45)
    wx0, wx1, wy0, wy1 = int(0.08 * w), int(0.30 * w), int(0.12 * h), int(0.42 * h)
    img[wy0:wy1, wx0:wx1] = (170, 210, 240)
    img[wy0:wy1, (wx0 + wx1) // 2] = (250, 250, 250)
    _noise(img, rng, 2.5)
    return img


def _paint_office(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (200, 212, 225), (185, 195, 210))
    wx0, wx1, wy0, wy1 = int(0.55 * w), int(0.95 * w), int(0.08 * h), int(0.45 * h)
    img[wy0:wy1, wx0:wx1] = (235, 240, 245)
    img[wy0:wy1:max(2, h // 40), wx0:wx1] = (160, 165, 175)  # blinds
    fy = int(0.76 * h)
    img[fy:] = (115, 120, 132)
    _noise(img, rng, 6.0, fy)
    return img


def _paint_hospital(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (215, 238, 226), (200, 228, 215))
    fy = int(0.78 * h)
    img[fy:] = (232, 232, 228)
    tile = max(3, h // 14)
    img[fy::tile] = (185, 190, 188)
    img[fy:, ::tile] = (185, 190, 188)
    cx, cy, s = int(0.12 * w), int(0.18 * h), max(2, h // 30)
    img[cy - 3 * s:cy + 3 * s, cx - s:cx + s] = (40, 160, 90)  # green cross
    img[cy - s:cy + s, cx - 3 * s:cx + 3 * s] = (40, 160, 90)
    _noise(img, rng, 2.0)
    return img


def _paint_funeral(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (140, 142, 150), (185, 185, 190))
    gy = int(0.55 * h)
    img[gy:] = _vgrad(h - gy, w, (55, 82, 52), (38, 60, 38))
    _noise(img, rng, 5.0, gy)
    n = max(3, w // 30)
    for i in range(n):  # gravestones along the horizon
        x = int((i + 0.5 + rng.uniform(-0.2, 0.2)) * w / n)
        gw, gh = max(3, w // 28), max(5, h // 9)
        g = int(rng.integers(95, 140))
        img[gy - gh:gy + 2, max(0, x - gw // 2):x + gw // 2] = (g, g, g + 5)
    return img


def _paint_alley(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgrad(h, w, (18, 16, 38), (40, 32, 42))
    bh, bw = max(3, h // 24), max(6, w // 16)
    gy = int(0.80 * h)
    for r, y in enumerate(range(int(0.15 * h), gy, bh)):
        img[y:y + bh - 1] = (70, 34, 28)
        off = (r % 2) * (bw // 2)
        img[y:y + bh - 1, off::bw] = (30, 25, 28)
        img[y + bh - 1] = (30, 25, 28)
    img[gy:] = (42, 42, 48)
    _noise(img, rng, 5.0)
    yy, xx = np.mgrid[0:h, 0:w]
    glow = np.exp(-((yy - 0.1 * h) ** 2 + (xx - 0.7 * w) ** 2) / (2 * (0.18 * h) ** 2))
    img += glow[..., None] * np.array([120.0, 100.0, 40.0])
    return img


SCENE_LOOKS: dict[str, SceneLook] = {
    "party": SceneLook(0.72, _paint_party),
    "stadium": SceneLook(0.35, _paint_stadium),
    "beach": SceneLook(0.55, _paint_beach),
    "home": SceneLook(0.74, _paint_home),
    "office": SceneLook(0.76, _paint_office),
    "hospital": SceneLook(0.78, _paint_hospital),
    "funeral": SceneLook(0.55, _paint_funeral),
    "alley": SceneLook(0.80, _paint_alley),
}


def background(scene: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The static background of a scene, float ``[H, W, 3]`` in 0..255, with a per-clip tint."""
    img = SCENE_LOOKS[scene].paint(height, width, rng)
    img = img * rng.uniform(0.88, 1.12) + rng.uniform(-10, 10, size=3)
    return img


def animate(scene: str, draw: ImageDraw.ImageDraw, frame: int, width: int, height: int,
            rng: np.random.Generator) -> None:
    """Per-frame scene life: blinking party lights, waves, rain at the cemetery, a flickering lamp."""
    if scene == "party":
        n = 9
        for i in range(n):
            x = (i + 0.5) * width / n
            y = 0.06 * height + 0.05 * height * math.sin(math.pi * (i + 0.5) / n)
            c = SHIRTS[(i + frame // 4) % len(SHIRTS)]
            r = max(1.0, 0.018 * height)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
    elif scene == "beach":
        for k in range(3):
            y = (0.43 + 0.035 * k) * height
            x0 = ((frame * 1.5 + k * 37) % (width * 0.5)) - width * 0.1
            draw.line([(x0, y), (x0 + width * 0.25, y)], fill=(200, 225, 245), width=1)
            draw.line([(x0 + width * 0.55, y), (x0 + width * 0.7, y)], fill=(200, 225, 245), width=1)
    elif scene == "funeral":
        for _ in range(max(4, width // 12)):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            draw.line([(x, y), (x - 1, y + 0.04 * height)], fill=(170, 175, 190), width=1)
    elif scene == "alley":
        r = 0.03 * height
        x, y = 0.7 * width, 0.1 * height
        lit = rng.random() >= 0.15  # the lamp flickers
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 240, 170) if lit else (120, 105, 70))


# ----------------------------------------------------------------------------------------------
# Objects (COCO class names), each drawn as a few shapes characteristic of the class
# ----------------------------------------------------------------------------------------------

ObjectPainter = Callable[[ImageDraw.ImageDraw, float, float, float], None]


def _cake(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.rectangle([x - 0.5 * s, y - 0.35 * s, x + 0.5 * s, y], fill=(245, 180, 200), outline=(180, 90, 120))
    d.rectangle([x - 0.35 * s, y - 0.6 * s, x + 0.35 * s, y - 0.35 * s], fill=(255, 240, 245),
                outline=(180, 90, 120))
    for k in (-0.2, 0.0, 0.2):
        d.line([(x + k * s, y - 0.6 * s), (x + k * s, y - 0.78 * s)], fill=(220, 40, 40), width=1)
        d.ellipse([x + k * s - 1, y - 0.86 * s, x + k * s + 1, y - 0.8 * s], fill=(255, 220, 40))


def _cup(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.rectangle([x - 0.22 * s, y - 0.45 * s, x + 0.22 * s, y], fill=(250, 250, 250), outline=(90, 90, 90))
    d.arc([x + 0.12 * s, y - 0.38 * s, x + 0.4 * s, y - 0.12 * s], -90, 90, fill=(90, 90, 90), width=1)


def _wine_glass(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.polygon([(x - 0.22 * s, y - 0.8 * s), (x + 0.22 * s, y - 0.8 * s), (x, y - 0.45 * s)],
              fill=(150, 20, 50), outline=(220, 220, 230))
    d.line([(x, y - 0.45 * s), (x, y - 0.05 * s)], fill=(220, 220, 230), width=1)
    d.line([(x - 0.15 * s, y), (x + 0.15 * s, y)], fill=(220, 220, 230), width=1)


def _chair(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (120, 75, 40)
    d.rectangle([x - 0.3 * s, y - 0.5 * s, x + 0.3 * s, y - 0.42 * s], fill=c)
    d.rectangle([x - 0.3 * s, y - 1.0 * s, x - 0.22 * s, y - 0.42 * s], fill=c)
    for k in (-0.28, 0.26):
        d.line([(x + k * s, y - 0.42 * s), (x + k * s, y)], fill=c, width=max(1, int(0.06 * s)))


def _dining_table(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (135, 85, 45)
    d.rectangle([x - 0.9 * s, y - 0.55 * s, x + 0.9 * s, y - 0.45 * s], fill=c)
    d.rectangle([x - 0.9 * s, y - 0.6 * s, x + 0.9 * s, y - 0.55 * s], fill=(245, 245, 240))
    for k in (-0.8, 0.8):
        d.line([(x + k * s, y - 0.45 * s), (x + k * s, y)], fill=c, width=max(1, int(0.07 * s)))


def _bottle(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (30, 120, 50)
    d.rectangle([x - 0.12 * s, y - 0.55 * s, x + 0.12 * s, y], fill=c)
    d.rectangle([x - 0.05 * s, y - 0.8 * s, x + 0.05 * s, y - 0.55 * s], fill=c)


def _tv(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.rectangle([x - 0.7 * s, y - 1.0 * s, x + 0.7 * s, y - 0.2 * s], fill=(20, 20, 25))
    d.rectangle([x - 0.62 * s, y - 0.93 * s, x + 0.62 * s, y - 0.27 * s], fill=(70, 140, 230))
    d.rectangle([x - 0.1 * s, y - 0.2 * s, x + 0.1 * s, y], fill=(40, 40, 45))


def _sports_ball(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    r = 0.3 * s
    d.ellipse([x - r, y - 2 * r, x + r, y], fill=(250, 250, 250), outline=(20, 20, 20))
    q = 0.35 * r
    d.ellipse([x - q, y - r - q, x + q, y - r + q], fill=(20, 20, 20))


def _bed(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.rectangle([x - 1.0 * s, y - 0.5 * s, x + 1.0 * s, y - 0.2 * s], fill=(250, 250, 250), outline=(150, 150, 150))
    d.rectangle([x - 0.4 * s, y - 0.55 * s, x + 1.0 * s, y - 0.25 * s], fill=(110, 160, 220))
    d.rectangle([x - 1.05 * s, y - 0.9 * s, x - 0.95 * s, y], fill=(170, 170, 180))
    d.line([(x + 0.95 * s, y - 0.2 * s), (x + 0.95 * s, y)], fill=(170, 170, 180), width=2)


def _laptop(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.polygon([(x - 0.35 * s, y - 0.1 * s), (x + 0.35 * s, y - 0.1 * s), (x + 0.28 * s, y - 0.6 * s),
               (x - 0.42 * s, y - 0.6 * s)], fill=(60, 60, 70))
    d.polygon([(x - 0.32 * s, y - 0.15 * s), (x + 0.3 * s, y - 0.15 * s), (x + 0.25 * s, y - 0.55 * s),
               (x - 0.37 * s, y - 0.55 * s)], fill=(150, 200, 240))
    d.rectangle([x - 0.45 * s, y - 0.1 * s, x + 0.45 * s, y], fill=(170, 170, 180))


def _potted_plant(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.polygon([(x - 0.25 * s, y - 0.4 * s), (x + 0.25 * s, y - 0.4 * s), (x + 0.18 * s, y), (x - 0.18 * s, y)],
              fill=(190, 95, 50))
    for dx, dy in ((-0.2, -0.6), (0.2, -0.62), (0.0, -0.8), (-0.1, -0.95), (0.12, -0.9)):
        r = 0.17 * s
        d.ellipse([x + dx * s - r, y + dy * s - r, x + dx * s + r, y + dy * s + r], fill=(40, 140, 50))


def _vase(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    for dx, col in ((-0.15, (240, 240, 90)), (0.0, (230, 60, 80)), (0.15, (250, 250, 250))):
        d.line([(x, y - 0.45 * s), (x + dx * s, y - 0.85 * s)], fill=(40, 120, 40), width=1)
        r = 0.08 * s
        d.ellipse([x + dx * s - r, y - 0.85 * s - r, x + dx * s + r, y - 0.85 * s + r], fill=col)
    d.ellipse([x - 0.2 * s, y - 0.5 * s, x + 0.2 * s, y], fill=(50, 80, 170))


def _book(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    for k, col in enumerate(((170, 40, 40), (40, 70, 150), (200, 160, 40))):
        y1 = y - k * 0.12 * s
        d.rectangle([x - 0.35 * s + k * 0.03 * s, y1 - 0.12 * s, x + 0.35 * s, y1], fill=col,
                    outline=(240, 240, 230))


def _umbrella(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.line([(x, y - 1.3 * s), (x, y)], fill=(90, 90, 90), width=max(1, int(0.05 * s)))
    box = [x - 0.7 * s, y - 1.65 * s, x + 0.7 * s, y - 0.95 * s]
    for k, col in enumerate(((230, 50, 50), (250, 250, 250)) * 3):
        d.pieslice(box, 180 + k * 30, 210 + k * 30, fill=col)


def _surfboard(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.ellipse([x - 0.18 * s, y - 1.3 * s, x + 0.18 * s, y], fill=(250, 150, 40), outline=(120, 60, 20))
    d.line([(x, y - 1.2 * s), (x, y - 0.1 * s)], fill=(250, 250, 250), width=1)


def _knife(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.polygon([(x - 0.1 * s, y - 0.12 * s), (x + 0.45 * s, y - 0.12 * s), (x + 0.55 * s, y - 0.2 * s),
               (x - 0.1 * s, y - 0.24 * s)], fill=(215, 220, 230))
    d.rectangle([x - 0.4 * s, y - 0.23 * s, x - 0.1 * s, y - 0.1 * s], fill=(25, 20, 20))


def _couch(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c, dark = (160, 50, 60), (120, 35, 45)
    d.rounded_rectangle([x - 1.0 * s, y - 0.75 * s, x + 1.0 * s, y - 0.1 * s], radius=max(1, 0.1 * s), fill=c)
    d.rectangle([x - 0.85 * s, y - 0.4 * s, x + 0.85 * s, y - 0.1 * s], fill=dark)
    d.rectangle([x - 1.05 * s, y - 0.5 * s, x - 0.85 * s, y - 0.05 * s], fill=dark)
    d.rectangle([x + 0.85 * s, y - 0.5 * s, x + 1.05 * s, y - 0.05 * s], fill=dark)


def _clock(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    r = 0.3 * s
    cy = y - r
    d.ellipse([x - r, cy - r, x + r, cy + r], fill=(250, 250, 250), outline=(30, 30, 30), width=max(1, int(0.08 * s)))
    d.line([(x, cy), (x, cy - 0.75 * r)], fill=(30, 30, 30), width=1)
    d.line([(x, cy), (x + 0.55 * r, cy)], fill=(30, 30, 30), width=1)


def _car(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (60, 80, 160)
    d.rectangle([x - 1.0 * s, y - 0.55 * s, x + 1.0 * s, y - 0.18 * s], fill=c)
    d.polygon([(x - 0.55 * s, y - 0.55 * s), (x - 0.35 * s, y - 0.85 * s), (x + 0.4 * s, y - 0.85 * s),
               (x + 0.6 * s, y - 0.55 * s)], fill=c)
    d.polygon([(x - 0.45 * s, y - 0.58 * s), (x - 0.3 * s, y - 0.8 * s), (x + 0.35 * s, y - 0.8 * s),
               (x + 0.5 * s, y - 0.58 * s)], fill=(170, 200, 230))
    r = 0.2 * s
    for k in (-0.6, 0.6):
        d.ellipse([x + k * s - r, y - 2 * r, x + k * s + r, y], fill=(20, 20, 20))
    d.ellipse([x + 0.9 * s, y - 0.5 * s, x + 1.0 * s, y - 0.4 * s], fill=(255, 240, 160))


def _dog(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (150, 100, 55)
    d.ellipse([x - 0.45 * s, y - 0.6 * s, x + 0.35 * s, y - 0.25 * s], fill=c)
    d.ellipse([x + 0.2 * s, y - 0.85 * s, x + 0.55 * s, y - 0.5 * s], fill=c)
    d.ellipse([x + 0.45 * s, y - 0.72 * s, x + 0.62 * s, y - 0.62 * s], fill=(30, 20, 20))
    w = max(1, int(0.08 * s))
    for k in (-0.35, -0.15, 0.1, 0.25):
        d.line([(x + k * s, y - 0.3 * s), (x + k * s, y)], fill=c, width=w)
    d.line([(x - 0.45 * s, y - 0.5 * s), (x - 0.65 * s, y - 0.75 * s)], fill=c, width=w)


def _teddy_bear(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (170, 115, 60)
    for cx, cy, r in ((0.0, -0.25, 0.25), (0.0, -0.62, 0.18), (-0.15, -0.78, 0.07), (0.15, -0.78, 0.07)):
        d.ellipse([x + (cx - r) * s, y + (cy - r) * s, x + (cx + r) * s, y + (cy + r) * s], fill=c)
    d.ellipse([x - 0.08 * s, y - 0.62 * s, x + 0.08 * s, y - 0.5 * s], fill=(230, 200, 160))


def _bench(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (110, 70, 40)
    for k in (0.45, 0.6, 0.8):
        d.rectangle([x - 0.9 * s, y - (k + 0.06) * s, x + 0.9 * s, y - k * s], fill=c)
    for k in (-0.8, 0.8):
        d.line([(x + k * s, y - 0.45 * s), (x + k * s, y)], fill=(40, 40, 40), width=max(1, int(0.06 * s)))


def _backpack(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    d.rounded_rectangle([x - 0.3 * s, y - 0.75 * s, x + 0.3 * s, y], radius=max(1, 0.1 * s), fill=(200, 120, 30))
    d.rectangle([x - 0.2 * s, y - 0.3 * s, x + 0.2 * s, y - 0.08 * s], fill=(160, 90, 20))


def _fire_hydrant(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    c = (210, 30, 30)
    d.rectangle([x - 0.15 * s, y - 0.7 * s, x + 0.15 * s, y], fill=c)
    d.pieslice([x - 0.15 * s, y - 0.85 * s, x + 0.15 * s, y - 0.55 * s], 180, 360, fill=c)
    d.rectangle([x - 0.27 * s, y - 0.5 * s, x + 0.27 * s, y - 0.38 * s], fill=c)


#: Object painter and size (fraction of the frame height) per COCO class name.
OBJECT_PAINTERS: dict[str, tuple[ObjectPainter, float]] = {
    "cake": (_cake, 0.16), "cup": (_cup, 0.10), "wine glass": (_wine_glass, 0.13),
    "chair": (_chair, 0.22), "dining table": (_dining_table, 0.22), "bottle": (_bottle, 0.12),
    "tv": (_tv, 0.22), "sports ball": (_sports_ball, 0.14), "bed": (_bed, 0.22),
    "laptop": (_laptop, 0.16), "potted plant": (_potted_plant, 0.2), "vase": (_vase, 0.18),
    "book": (_book, 0.14), "umbrella": (_umbrella, 0.2), "surfboard": (_surfboard, 0.3),
    "knife": (_knife, 0.14), "couch": (_couch, 0.2), "clock": (_clock, 0.14), "car": (_car, 0.25),
    "dog": (_dog, 0.16), "teddy bear": (_teddy_bear, 0.16), "bench": (_bench, 0.16),
    "backpack": (_backpack, 0.14), "fire hydrant": (_fire_hydrant, 0.15),
}

#: Objects that hang on a wall instead of standing on the floor.
WALL_OBJECTS = frozenset({"clock"})


def draw_object(draw: ImageDraw.ImageDraw, name: str, x: float, y: float, size: float) -> None:
    """Draw COCO class ``name`` standing on (``x``, ``y``) with size ``size`` pixels."""
    painter, _ = OBJECT_PAINTERS[name]
    painter(draw, x, y, size)


def to_image(img: np.ndarray) -> Image.Image:
    """Float ``[H, W, 3]`` 0..255 -> PIL RGB image."""
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
