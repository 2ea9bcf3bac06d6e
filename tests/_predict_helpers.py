"""Fixtures shared by the predict / pose / tracking / ONNX tests: tiny checkpoints, synthetic
videos of stick-figure people, and a scripted pose backend that knows where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from beenet.inference.pose import PoseDetection, detection_from_keypoints
from beenet.labels import NUM_JOINTS, OPENPOSE_EDGES

#: A standing person's joints, OpenPose-18 order, in units of body height (neck at 0, 0).
_BODY = np.array([
    (0.0, -0.12), (0.0, 0.0), (-0.12, 0.0), (-0.18, 0.2), (-0.2, 0.38), (0.12, 0.0), (0.18, 0.2),
    (0.2, 0.38), (-0.08, 0.42), (-0.09, 0.65), (-0.1, 0.88), (0.08, 0.42), (0.09, 0.65),
    (0.1, 0.88), (-0.03, -0.15), (0.03, -0.15), (-0.06, -0.13), (0.06, -0.13),
], dtype=np.float32)


def tiny_run_config(**model: Any) -> dict[str, Any]:
    """A run config dict for a tiny, randomly initialised model (fast on 2 CPU cores)."""
    from beenet.training.config import RunConfig

    cfg = RunConfig()
    m = dict(pretrained=False, image_size=32, stream_channels=16, stream_layers=1, kappa=8,
             skeleton_channels=(8, 16), channels_last=False)
    data = {"image_size": 32, "crop_size": 32, "skeleton_frames": 8, "num_frames": 4}
    for k in list(model):
        if k.startswith("data_"):
            data[k[5:]] = model.pop(k)
    m.update(model)
    if "image_size" in model:
        data["image_size"] = model["image_size"]
    for k, v in m.items():
        setattr(cfg.model, k, v)
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.data.body_crop = cfg.model.body_crop != "none"
    cfg.data.skeleton = bool(cfg.model.skeleton)
    cfg.model.validate()
    return cfg.to_dict()


def make_checkpoint(path: Path, seed: int = 0, context_source: str | None = None, **model: Any) -> Path:
    """Save a beenet checkpoint of a tiny random model; ``data_<key>=`` sets the data config."""
    import torch

    from beenet.models import ModelConfig, build_model
    from beenet.training.checkpoint import save_checkpoint

    config = tiny_run_config(**model)
    if context_source is not None:
        config["context"]["source"] = context_source
    net = build_model(ModelConfig.from_dict(config["model"]), seed=seed)
    # Non-neutral priors / outputs so that parity tests compare informative numbers.
    g = torch.Generator().manual_seed(seed)
    ctx = torch.rand(64, 445, generator=g)
    net.fit_priors(ctx, torch.rand(64, 26, generator=g), 1 + 9 * torch.rand(64, 3, generator=g))
    net.eval()
    return save_checkpoint(path, model=net, config=config, epoch=0)


def person_keypoints(cx: float, top: float, height: float, phase: float = 0.0) -> np.ndarray:
    """``[18, 3]`` joints of a stick person whose neck is at (cx, top) and who is ``height`` tall;
    ``phase`` swings the arms."""
    kp = np.zeros((NUM_JOINTS, 3), dtype=np.float32)
    body = _BODY.copy()
    body[[4, 7], 1] -= 0.25 * np.sin(phase) * np.array([1, -1])
    kp[:, 0] = cx + body[:, 0] * height
    kp[:, 1] = top + body[:, 1] * height
    kp[:, 2] = 0.9
    return kp


def draw_person(frame: np.ndarray, kp: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Rasterise a stick figure (thick lines) into ``frame`` in place."""
    H, W = frame.shape[:2]
    for a, b in OPENPOSE_EDGES:
        (x0, y0), (x1, y1) = kp[a, :2], kp[b, :2]
        for t in np.linspace(0, 1, 24):
            x, y = int(round(x0 + t * (x1 - x0))), int(round(y0 + t * (y1 - y0)))
            frame[max(0, y - 1) : min(H, y + 2), max(0, x - 1) : min(W, x + 2)] = colour


def people_scene(num_frames: int, width: int, height: int, people: int = 2) -> list[list[np.ndarray]]:
    """Per frame, the joints of ``people`` walking stick figures (person k enters at k*3 frames)."""
    out = []
    for t in range(num_frames):
        frame_people = []
        for k in range(people):
            cx = width * (0.25 + 0.5 * k) + 0.05 * width * np.sin(t / 10 + k)
            frame_people.append(person_keypoints(cx, height * 0.3, height * 0.55, phase=t / 4 + k))
        out.append(frame_people)
    return out


def write_people_video(path: Path, num_frames: int = 24, width: int = 96, height: int = 64,
                       people: int = 2, fps: float = 12.0) -> list[list[np.ndarray]]:
    """An mp4 of stick-figure people on a textured background; returns their joints per frame."""
    from beenet.data.video_writer import write_video

    scene = people_scene(num_frames, width, height, people)
    rng = np.random.default_rng(0)
    bg = (rng.integers(40, 90, (height, width, 3))).astype(np.uint8)
    colours = [(240, 200, 60), (60, 200, 240), (200, 60, 240)]

    def frames():
        for t in range(num_frames):
            f = bg.copy()
            for k, kp in enumerate(scene[t]):
                draw_person(f, kp, colours[k % 3])
            yield f

    write_video(path, frames(), fps)
    return scene


class ScriptedPose:
    """A pose backend that reads the pixels (so decoding runs) but answers from known joints."""

    name = "scripted"
    needs_pixels = True

    def __init__(self, scene: list[list[np.ndarray]]) -> None:
        self.scene = scene
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        assert frame is not None and frame.ndim == 3
        self.calls += 1
        dets = [detection_from_keypoints(kp) for kp in self.scene[int(index)]]
        return [d for d in dets if d is not None]
