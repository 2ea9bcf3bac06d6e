"""Body poses of the synthetic BoLD: the archetypes and the 18 OpenPose joints they move.

Poses are built in body units (height about 1, y pointing down, feet at y = 0) and placed in
pixels by :func:`place_pose`; the joints written to the ``.npy`` files are the same points the
figures are drawn from (:mod:`beenet.data.synth.draw`). What an archetype *means* is in
:mod:`beenet.data.synth.rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from beenet.labels import NUM_JOINTS

# OpenPose-18 indices used by the pose builder (the names are in beenet.labels.OPENPOSE_JOINTS).
NOSE, NECK, RSHO, RELB, RWRI, LSHO, LELB, LWRI = 0, 1, 2, 3, 4, 5, 6, 7
RHIP, RKNE, RANK, LHIP, LKNE, LANK, REYE, LEYE, REAR, LEAR = 8, 9, 10, 11, 12, 13, 14, 15, 16, 17

#: Body archetypes: a posture plus a way of moving. What they express is in :mod:`beenet.data.synth.rules`.
ARCHETYPES: tuple[str, ...] = (
    "arms_up", "slumped", "arms_crossed", "hands_to_face",
    "leaning_forward", "trembling", "relaxed", "fists",
)


@dataclass(frozen=True)
class Posture:
    """Static shape of an archetype, in torso coordinates (origin at the hip centre, y down,
    the person's right side at negative x, i.e. on the image's left: people face the camera)."""

    r_elbow: tuple[float, float]
    r_wrist: tuple[float, float]
    l_elbow: tuple[float, float]
    l_wrist: tuple[float, float]
    lean: float = 0.0           # radians, upper body rotated towards the facing side
    shoulder_drop: float = 0.0  # + lowers the shoulders (slumped), - raises them (tense)
    shoulder_width: float = 0.11
    head_dy: float = 0.0        # + drops the head
    knee_bend: float = 0.0      # 0 straight .. 1 deep bend
    stance: float = 0.02        # extra half-width of the feet


POSTURES: dict[str, Posture] = {
    "relaxed": Posture((-0.13, -0.14), (-0.14, 0.01), (0.13, -0.14), (0.14, 0.01)),
    "arms_up": Posture((-0.21, -0.43), (-0.25, -0.58), (0.21, -0.43), (0.25, -0.58),
                       shoulder_drop=-0.02, shoulder_width=0.115, head_dy=-0.01, stance=0.03),
    "slumped": Posture((-0.10, -0.11), (-0.09, 0.04), (0.10, -0.11), (0.09, 0.04),
                       lean=0.10, shoulder_drop=0.035, shoulder_width=0.09, head_dy=0.065,
                       knee_bend=0.3, stance=0.01),
    "arms_crossed": Posture((-0.14, -0.15), (0.08, -0.19), (0.14, -0.15), (-0.08, -0.16),
                            lean=-0.03, shoulder_width=0.115, head_dy=-0.01, stance=0.04),
    "hands_to_face": Posture((-0.09, -0.17), (-0.03, -0.36), (0.09, -0.17), (0.03, -0.36),
                             lean=0.05, shoulder_drop=0.01, shoulder_width=0.10, head_dy=0.02,
                             knee_bend=0.1, stance=0.0),
    "leaning_forward": Posture((-0.12, -0.12), (-0.07, -0.02), (0.12, -0.12), (0.08, -0.02),
                               lean=0.32, head_dy=-0.01, knee_bend=0.35, stance=0.05),
    "trembling": Posture((-0.08, -0.17), (-0.02, -0.25), (0.08, -0.17), (0.02, -0.25),
                         lean=0.06, shoulder_drop=-0.03, shoulder_width=0.085, head_dy=0.03,
                         knee_bend=0.45, stance=-0.01),
    "fists": Posture((-0.21, -0.17), (-0.13, -0.28), (0.21, -0.17), (0.13, -0.28),
                     lean=0.04, shoulder_drop=-0.01, shoulder_width=0.12, head_dy=0.01,
                     knee_bend=0.3, stance=0.08),
}
assert set(POSTURES) == set(ARCHETYPES)


@dataclass(frozen=True)
class Motion:
    """Per-person variation of an archetype's movement."""

    speed: float = 1.0      # frequency multiplier
    amplitude: float = 1.0  # movement size multiplier
    phase: float = 0.0      # radians
    facing: int = 1         # +1 leans/turns to the image right, -1 to the left


def body_pose(archetype: str, t: float, motion: Motion, jitter: np.ndarray | None = None) -> np.ndarray:
    """The 18 OpenPose joints ``[18, 2]`` in body units at time ``t`` seconds.

    ``jitter`` (``[18, 2]`` standard normal draws) is used by the trembling archetype only, so the
    caller controls the randomness.
    """
    p = POSTURES[archetype]
    a, ph, f = motion.amplitude, motion.phase, motion.speed
    s = lambda hz, extra=0.0: math.sin(2.0 * math.pi * hz * f * t + ph + extra)  # noqa: E731

    lean = p.lean * motion.facing
    drop, head_dy, head_dx, bounce = p.shoulder_drop, p.head_dy, 0.0, 0.0
    rw, lw = list(p.r_wrist), list(p.l_wrist)
    re, le = list(p.r_elbow), list(p.l_elbow)

    if archetype == "arms_up":  # bouncing, waving
        bounce = -0.04 * a * abs(s(1.8))
        rw[0] += 0.04 * a * s(1.8, 0.7)
        lw[0] -= 0.04 * a * s(1.8, 0.7)
        re[0] += 0.02 * a * s(1.8, 0.7)
        le[0] -= 0.02 * a * s(1.8, 0.7)
    elif archetype == "slumped":  # slow sway, head sinking
        lean += 0.03 * a * s(0.3)
        head_dy += 0.01 * a * s(0.3, 1.0)
    elif archetype == "arms_crossed":  # still; weight shift and a slow head shake
        lean += 0.015 * a * s(0.25)
        head_dx = 0.012 * a * s(0.5)
    elif archetype == "hands_to_face":  # rocking
        lean += 0.06 * a * s(0.6)
    elif archetype == "leaning_forward":  # nodding, small rocking towards the other
        lean += 0.04 * a * motion.facing * s(0.5)
        head_dy += 0.015 * a * s(1.2)
    elif archetype == "relaxed":  # gentle sway, arms swinging a little
        lean += 0.02 * a * s(0.35)
        rw[0] += 0.03 * a * s(0.35, 1.2)
        lw[0] += 0.03 * a * s(0.35, 1.2)
    elif archetype == "fists":  # alternating punches, stomping
        punch_r, punch_l = max(0.0, s(1.5)), max(0.0, s(1.5, math.pi))
        rw[0] -= 0.10 * a * punch_r
        rw[1] -= 0.03 * a * punch_r
        lw[0] += 0.10 * a * punch_l
        lw[1] -= 0.03 * a * punch_l
        bounce = -0.02 * a * abs(s(1.5))
    # trembling: posture is static, the jitter below does the moving

    sw = p.shoulder_width
    upper = np.array([
        (head_dx, -0.40 + head_dy),             # nose
        (0.0, -0.31),                           # neck
        (-sw, -0.29 + drop), tuple(re), tuple(rw),
        (sw, -0.29 + drop), tuple(le), tuple(lw),
        (-0.028 + head_dx, -0.42 + head_dy),    # right eye
        (0.028 + head_dx, -0.42 + head_dy),     # left eye
        (-0.055 + head_dx, -0.405 + head_dy),   # right ear
        (0.055 + head_dx, -0.405 + head_dy),    # left ear
    ], dtype=np.float64)
    c, sn = math.cos(lean), math.sin(lean)
    rot = upper.copy()
    rot[:, 0] = upper[:, 0] * c - upper[:, 1] * sn
    rot[:, 1] = upper[:, 0] * sn + upper[:, 1] * c

    b, st = p.knee_bend, p.stance
    knee_y = 0.23 * (1.0 - 0.25 * b)
    ankle_y = knee_y + 0.23 * (1.0 - 0.1 * b)
    legs = np.array([
        (-0.065, 0.0), (-(0.07 + st + 0.05 * b), knee_y), (-(0.075 + 1.4 * st), ankle_y),
        (0.065, 0.0), (0.07 + st + 0.05 * b, knee_y), (0.075 + 1.4 * st, ankle_y),
    ])

    out = np.empty((NUM_JOINTS, 2), dtype=np.float64)
    out[[NOSE, NECK, RSHO, RELB, RWRI, LSHO, LELB, LWRI, REYE, LEYE, REAR, LEAR]] = rot
    out[[RHIP, RKNE, RANK, LHIP, LKNE, LANK]] = legs
    if archetype == "trembling" and jitter is not None:
        shake = 0.006 * a * s(7.0)
        out[:, 0] += shake
        out[:12] += 0.006 * a * jitter[:12]  # upper body and knees shiver, feet stay planted
    out[:, 1] += bounce - ankle_y  # feet on the ground (y = 0), bounce lifts the whole body
    return out


def place_pose(pose: np.ndarray, centre_x: float, feet_y: float, height_px: float) -> np.ndarray:
    """Body units -> pixels: ``[18, 2]`` with the feet at ``feet_y`` and the body ``height_px`` tall."""
    px = np.empty_like(pose)
    px[:, 0] = centre_x + pose[:, 0] * height_px
    px[:, 1] = feet_y + pose[:, 1] * height_px
    return px

