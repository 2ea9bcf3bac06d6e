"""Rendering one planned clip: its frames and its joints file, from the same poses.

:func:`render_clip` draws a :class:`~beenet.data.synth.plan.ClipPlan` (seeded by the clip's own
``render_seed``, so clips can be drawn in any order, in any process); :func:`write_clip` writes the
clip's ``.mp4`` and ``.npy`` where BoLD keeps them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import ImageDraw

from beenet.data.synth import draw
from beenet.data.synth.plan import ClipPlan
from beenet.data.synth.poses import body_pose, place_pose
from beenet.data.synth.rules import OBJECT_NAMES, SCENES
from beenet.media.video_writer import VideoWriter
from beenet.labels import NUM_JOINTS

# Every object the rules can place has a painter, every scene a look.
assert set(OBJECT_NAMES) <= set(draw.OBJECT_PAINTERS) and set(SCENES) == set(draw.SCENE_LOOKS)


def render_clip(clip: ClipPlan, width: int, height: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The clip's RGB frames (uint8 ``[H, W, 3]`` each) and its joints array ``[N, 56]``.

    The joints rows are the drawn joint positions plus a fraction of a pixel of noise, with
    detector-like defects: rows shuffled, no row where a person is missed, some keypoints at
    confidence < 0.1 or (0, 0, 0), keypoints outside the frame zeroed.
    """
    rng = np.random.default_rng(clip.render_seed)
    bg = draw.to_image(draw.background(clip.scene, width, height, rng))
    canvas = ImageDraw.Draw(bg)
    for obj in sorted(clip.objects, key=lambda o: o.y):  # farther (higher) objects first
        draw.draw_object(canvas, obj.name, obj.x, obj.y, obj.size)
    order = sorted(clip.people, key=lambda p: (p.annotated, p.feet_y))  # bystanders behind
    looks = {p.person_id: draw.random_look(rng, p.height_px, faded=not p.annotated) for p in order}
    frames: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for t in range(clip.num_frames):
        img = bg.copy()
        d = ImageDraw.Draw(img)
        draw.animate(clip.scene, d, t, width, height, rng)
        for p in order:
            if not p.start <= t <= p.end:
                continue
            jitter = rng.standard_normal((NUM_JOINTS, 2)) if p.archetype == "trembling" else None
            pose = body_pose(p.archetype, t / clip.fps, p.motion, jitter)
            kp = place_pose(pose, p.x + p.drift * t, p.feet_y, p.height_px)
            draw.draw_person(d, kp, p.height_px, looks[p.person_id])
            if t not in p.dropped:
                rows.append(_joints_row(rng, clip.frame_offset + t, p.person_id, kp, width, height))
        frames.append(np.asarray(img, dtype=np.uint8))
    joints = np.stack(rows) if rows else np.zeros((0, 2 + 3 * NUM_JOINTS))
    return frames, joints[rng.permutation(len(joints))]


def _joints_row(rng: np.random.Generator, frame: int, pid: int, kp: np.ndarray, W: int, H: int) -> np.ndarray:
    xy = kp + rng.normal(0.0, 0.35, size=kp.shape)
    conf = rng.uniform(0.3, 0.95, size=NUM_JOINTS)
    u = rng.random(NUM_JOINTS)
    low = u < 0.03                                      # seen, but with a tiny confidence
    gone = (u > 0.97) | ((np.arange(NUM_JOINTS) >= 16) & (u > 0.85))  # missed (ears: often)
    gone |= (xy[:, 0] < 0) | (xy[:, 0] >= W) | (xy[:, 1] < 0) | (xy[:, 1] >= H)
    conf[low] = rng.uniform(0.01, 0.09, size=int(low.sum()))
    out = np.empty(2 + 3 * NUM_JOINTS)
    out[0], out[1] = frame, pid
    trip = np.column_stack([xy, conf])
    trip[gone] = 0.0
    out[2:] = trip.reshape(-1)
    return out


def write_clip(root: str, clip: ClipPlan, width: int, height: int) -> str:
    """Render ``clip`` and write ``videos/<clip.video>`` and its joints ``.npy`` under ``root``."""
    frames, joints = render_clip(clip, width, height)
    video_path = Path(root) / "videos" / clip.video
    with VideoWriter(video_path, clip.fps, width, height) as writer:
        for f in frames:
            writer.write(f)
    joints_path = Path(root) / "joints" / (clip.video[: -len(".mp4")] + ".npy")
    joints_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(joints_path, joints)
    return clip.video
