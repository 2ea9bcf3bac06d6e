"""A real photo: pans and zooms over scikit-image's astronaut, through the mediapipe pose backend
(BlazePose on LiteRT) and predict."""

from __future__ import annotations

import numpy as np
import pytest

from _predict_helpers import make_checkpoint
from beenet.inference.table import COLUMNS, read_table
from beenet.labels import CATEGORIES

pytestmark = [pytest.mark.usefixtures("blazepose_models"), pytest.mark.slow]

SIZE = 256
FRAMES = 24
FPS = 12.0


def astronaut_clip(num_frames: int = FRAMES, size: int = SIZE) -> list[np.ndarray]:
    """Frames of a slow pan (left to right) with a zoom-in over the 512x512 photo."""
    import torch
    import torch.nn.functional as F
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float()
    frames = []
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1)
        side = int(round(480 - 110 * u))  # zoom in
        x0 = int(round((512 - side) * (0.2 + 0.6 * u)))  # pan
        y0 = int(round((512 - side) * 0.3))
        crop = img[:, :, y0 : y0 + side, x0 : x0 + side]
        out = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        frames.append(out[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from beenet.media.video_writer import write_video

    path = tmp_path_factory.mktemp("astronaut") / "astronaut.mp4"
    write_video(path, astronaut_clip(), FPS)
    return path


def test_predict_finds_the_astronaut_and_keeps_her_id(tmp_path, clip):
    from beenet.cli import main

    ckpt = make_checkpoint(tmp_path / "m.pt", skeleton=True, fusion_form="odds")
    out = tmp_path / "out"
    code = main(["predict", str(clip), "--checkpoint", str(ckpt), "--out", str(out), "--pose", "mediapipe",
                 "--window", "1", "--stride", "0.5", "--format", "csv,parquet", "--video", "--device", "cpu"])
    assert code == 0
    t = read_table(out / "astronaut.csv")
    assert t.person_id.unique().tolist() == [0]  # one person, one id over every frame
    assert len(t) == 3  # windows [0-11], [6-17], [12-23]
    assert list(t.columns) == list(COLUMNS)
    assert ((t[list(CATEGORIES)] >= 0) & (t[list(CATEGORIES)] <= 1)).all().all()
    assert ((t.vad >= 0) & (t.vad <= 10)).all().all()
    assert t.notna().all().all()
    # she fills a large part of the frame, and the box lies inside it
    assert (t.box_w * t.box_h > 0.1 * SIZE * SIZE).all()
    assert (t.box_x >= 0).all() and (t.box_x + t.box_w <= SIZE + 1e-6).all()
    assert (t.box_y >= 0).all() and (t.box_y + t.box_h <= SIZE + 1e-6).all()
    assert read_table(out / "astronaut.parquet").metadata == t.metadata
    assert (out / "astronaut_timeline.png").is_file() and (out / "astronaut_annotated.mp4").is_file()


def test_astronaut_is_tracked_in_every_frame(clip):
    from beenet.media.video import VideoReader
    from beenet.inference.pose import MediaPipeMultiPose
    from beenet.inference.tracking import Tracker

    pose, tracker = MediaPipeMultiPose(), Tracker()
    pose.reset()
    seen = []
    with VideoReader(clip) as r:
        for idx, frame in r.iter_frames():
            dets = pose(frame, idx)
            seen.append(tracker.update(idx, dets))
    pose.close()
    found = [ids for ids in seen if ids]
    assert len(found) >= FRAMES - 2, f"astronaut found in {len(found)} of {FRAMES} frames"
    assert {i for ids in found for i in ids} == {0}
