"""Fixtures shared by the predict / pose / tracking / ONNX tests: tiny checkpoints, synthetic
videos of stick-figure people, and a scripted pose backend that knows where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from beenet.inference.pose import PoseBackendBase, PoseDetection, detection_from_keypoints
from beenet.inference.windows import PersonTrack
from beenet.labels import NUM_JOINTS, OPENPOSE_EDGES

#: A standing person's joints, OpenPose-18 order, in units of body height (neck at 0, 0).
_BODY = np.array([
    (0.0, -0.12), (0.0, 0.0), (-0.12, 0.0), (-0.18, 0.2), (-0.2, 0.38), (0.12, 0.0), (0.18, 0.2),
    (0.2, 0.38), (-0.08, 0.42), (-0.09, 0.65), (-0.1, 0.88), (0.08, 0.42), (0.09, 0.65),
    (0.1, 0.88), (-0.03, -0.15), (0.03, -0.15), (-0.06, -0.13), (0.06, -0.13),
], dtype=np.float32)


def tiny_run_config(**model: Any) -> dict[str, Any]:
    """A run config dict for a tiny, randomly initialised model (fast on 2 CPU cores)."""
    from beenet.run_config import RunConfig

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
    from beenet.artifacts.checkpoint import save_checkpoint

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
    from beenet.media.video_writer import write_video

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


class ScriptedPose(PoseBackendBase):
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


def write_joints_clip(path: Path, num_frames: int = 24, width: int = 96, height: int = 64,
                      people: int = 2, fps: float = 12.0) -> Path:
    """A video ``path`` and its BoLD joints ``path.with_suffix('.npy')`` (person ids 0, 1, ...), so
    ``beenet predict X.npy`` runs without a pose model; returns the joints path."""
    scene = write_people_video(path, num_frames=num_frames, width=width, height=height, people=people, fps=fps)
    rows = [[t, pid, *kp.ravel()] for t, frame in enumerate(scene) for pid, kp in enumerate(frame)]
    np.save(path.with_suffix(".npy"), np.array(rows, dtype=np.float64))
    return path.with_suffix(".npy")


def scaled_checkpoint(src: Path, dst: Path, scale: float) -> Path:
    """A copy of checkpoint ``src`` with every weight matrix multiplied by ``scale`` (``nan``: all
    floating tensors NaN). 1e20 keeps the weights finite but makes the outputs overflow."""
    import torch

    from beenet.artifacts.checkpoint import load_checkpoint

    ckpt = load_checkpoint(src)
    if scale != scale:  # NaN
        model = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    else:
        model = {k: v * scale if v.is_floating_point() and v.ndim > 1 and "bn" not in k else v
                 for k, v in ckpt["model"].items()}
    torch.save(dict(ckpt, model=model), dst)
    return dst


def beenet_subprocess(args: list[str], *, fsize: int | None = None, umask: int | None = None,
                      **popen: Any) -> Any:
    """``python -m beenet ARGS`` in a child process (started, not waited for), optionally with a
    file-size limit (a full disk: writes past it fail with EFBIG, SIGXFSZ ignored) or a umask."""
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def limits() -> None:
        import resource
        import signal

        # Ctrl-C reaches the child as it reaches a command run from a terminal, even when pytest runs
        # with SIGINT ignored (a background job of a non-interactive shell): Python then installs
        # its KeyboardInterrupt handler in the child.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)

    return subprocess.Popen([sys.executable, "-m", "beenet", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limits, **popen)


def make_track(pid: int, present: np.ndarray) -> PersonTrack:
    """A person track whose 18 joints are seen (confidence 0.9, drifting right one pixel per frame)
    in the frames where ``present`` is True, missing elsewhere."""
    n = len(present)
    kp = np.full((n, 18, 3), np.nan, np.float32)
    kp[..., 2] = 0
    for t in np.flatnonzero(present):
        kp[t, :, 0] = 10 + np.arange(18) + t
        kp[t, :, 1] = 10 + 2 * np.arange(18)
        kp[t, :, 2] = 0.9
    return PersonTrack(pid, kp, present)
