"""``beenet predict`` outputs on real footage: the per-frame table, keypoints saved and read back,
the timeline with every window, empty videos, still images, BoLD keys, torchrun shards, skipping
finished outputs, and ``Predictor.iter_predict``."""

from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _predict_helpers import ScriptedPose, make_checkpoint, write_joints_clip, write_people_video
from footage import footage

from beenet.cli import main
from beenet.errors import DataNotFoundError
from beenet.inference.batch import SUMMARY
from beenet.inference.inputs import Job, resolve_inputs, shard
from beenet.inference.predictor import Predictor
from beenet.inference.timeline import render_timeline, window_heat
from beenet.inference.results import frames_table
from beenet.inference.table import COLUMNS, FRAME_COLUMNS, make_table, read_frames_table, read_table
from beenet.labels import CATEGORIES, VAD_NAMES

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of real footage ``src``, re-encoded to ``dst`` (same fps)."""
    from beenet.media.video import VideoReader
    from beenet.media.video_writer import write_video

    with VideoReader(src) as r:
        fps = r.fps
        pics = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for _, f in r.iter_frames(0, frames)]
    write_video(dst, pics, fps)
    return dst


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt", fusion_form="odds")


@pytest.fixture(scope="module")
def real(tmp_path_factory, ckpt, blazepose_models):
    """One CLI run on two real clips (a woman talking, a street scene with several people) with
    --per-frame --save-keypoints, and the Python API's result for the talking clip."""
    d = tmp_path_factory.mktemp("real")
    clips = d / "clips"
    clips.mkdir()
    cut(footage("talking.mp4"), clips / "talking.mp4", 45)
    cut(footage("bikes.mp4"), clips / "bikes.mp4", 140)  # the suit man (f30-60), the cyclist (f103-136)
    out = d / "out"
    rc = main(["predict", str(clips), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu",
               "--window", "1", "--stride", "0.5", "--per-frame", "--save-keypoints", "--format", "csv,json"])
    assert rc == 0
    result = Predictor(ckpt, device="cpu", window=1.0, stride=0.5, show_progress=False).run(clips / "talking.mp4")
    return clips, out, result


def test_frames_table_follows_the_tracks_on_real_footage(real):
    _, out, result = real
    cli = read_frames_table(out / "talking_frames.csv")
    assert list(cli.columns) == list(FRAME_COLUMNS)
    assert json.loads((out / "talking_frames.meta.json").read_text())["video"] == "talking.mp4"
    api = result.frames
    assert len(api) > 20 and list(api.columns) == list(FRAME_COLUMNS)
    # The CLI and the Python API write the same table.
    pd.testing.assert_frame_equal(pd.DataFrame(cli), pd.DataFrame(api), check_exact=False, rtol=1e-5,
                                  check_dtype=False)
    json_rows = json.loads((out / "talking_frames.json").read_text())["rows"]
    assert len(json_rows) == len(cli)
    seen = set()
    for row in api.itertuples(index=False):
        pid, f = int(row.person_id), int(row.frame)
        track = result.tracks[pid]
        detected = np.flatnonzero(track.present)
        assert detected[0] <= f <= detected[-1]  # never extrapolated past the track
        assert tuple(result.boxes[pid][f]) == pytest.approx((row.box_x, row.box_y, row.box_w, row.box_h))
        assert 0 < row.confidence <= 1
        assert bool(row.interpolated) == (f in result.interpolated[pid])  # the frames pose skipped (auto: 5 Hz)
        assert row.time_s == pytest.approx(f / result.fps)
        seen.add((pid, f))
    # ... and every stored detection has its row.
    assert seen == {(pid, f) for pid, b in result.boxes.items() for f in b}
    assert api.interpolated.any() and not api.interpolated.all()  # talking.mp4 at 24 fps: posed every 5th frame
    # Scores: those of the window covering the frame, nearest centre where windows overlap.
    table = result.table
    for row in api.sample(n=min(15, len(api)), random_state=0).itertuples(index=False):
        win = table[(table.person_id == row.person_id) & (table.start_frame <= row.frame) & (table.end_frame >= row.frame)]
        if len(win) == 0:
            assert np.isnan(row.Peace)
            continue
        centre = (win.start_frame + win.end_frame) / 2
        best = win.iloc[int(np.argmin(np.abs(centre.to_numpy() - row.frame)))]
        assert row.valence == pytest.approx(best.valence) and row.Peace == pytest.approx(best.Peace)


def test_frames_table_confidence_and_interpolation_fields(real):
    """Detection confidences and interpolated frames, where the tracker records them, are used."""
    _, _, result = real
    pid = min(result.boxes)
    frames = sorted(result.boxes[pid])
    result.confidences = {pid: {frames[0]: 0.25}}
    result.interpolated = {pid: {frames[1]}}
    try:
        t = frames_table(result)
        first = t[(t.person_id == pid) & (t.frame == frames[0])].iloc[0]
        second = t[(t.person_id == pid) & (t.frame == frames[1])].iloc[0]
        assert first.confidence == 0.25 and not first.interpolated and second.interpolated
    finally:
        result.confidences, result.interpolated = {}, {}


def test_street_scene_per_frame_rows_and_keypoints_round_trip(real, ckpt, tmp_path):
    clips, out, _ = real
    frames = read_frames_table(out / "bikes_frames.csv")
    kp = np.load(out / "bikes_keypoints.npy")
    assert kp.shape[1] == 56 and kp[:, 0].min() == 0
    table = read_table(out / "bikes.csv")
    # the cyclist (f103-136); the suit man is seen for 15 frames (f30-44), under --min-track
    assert table.person_id.nunique() >= 1 and frames.person_id.nunique() >= 1
    # Detected per-frame rows are exactly the (person, frame) pairs of the saved joints (bar the
    # frame-0 pin); interpolated rows are not saved (they are interpolated again when read back).
    real_rows = kp[(kp[:, 2:].reshape(-1, 18, 3)[..., 2] > 0).any(1)]
    detected = frames[~frames.interpolated.astype(bool)]
    assert set(zip(detected.person_id, detected.frame)) == {(int(p), int(f)) for f, p in real_rows[:, :2]}
    # Scored again from the saved joints: no pose, the same tables.
    again = tmp_path / "again"
    rc = main(["predict", str(clips / "bikes.mp4"), "--checkpoint", str(ckpt), "--out", str(again),
               "--device", "cpu", "--window", "1", "--stride", "0.5", "--per-frame",
               "--keypoints", str(out / "bikes_keypoints.npy")])
    assert rc == 0
    pd.testing.assert_frame_equal(pd.read_csv(again / "bikes.csv"), pd.read_csv(out / "bikes.csv"))
    # The table says where its joints came from.
    assert read_table(again / "bikes.csv").settings["pose"]["source"] == str(out / "bikes_keypoints.npy")
    # Boxes read back from joints are the joints' boxes; pass 1 kept the person detector's.
    boxes = ["box_x", "box_y", "box_w", "box_h"]
    pd.testing.assert_frame_equal(pd.read_csv(again / "bikes_frames.csv").drop(columns=boxes),
                                  pd.read_csv(out / "bikes_frames.csv").drop(columns=boxes))
    # The same through the Python API (a precomputed pose never decodes for pose).
    pred = Predictor(ckpt, device="cpu", window=1.0, stride=0.5, pose=ScriptedPose([]), show_progress=False)
    t = pred.predict(clips / "bikes.mp4", keypoints=out / "bikes_keypoints.npy")
    np.testing.assert_allclose(t[list(CATEGORIES)].to_numpy(float), table[list(CATEGORIES)].to_numpy(float), atol=2e-6)


def _heat_pixels(png: Path) -> np.ndarray:
    """Mask of the pixels drawn in magma colours (the heat map), not background, text or lines;
    the colours are matplotlib's own (the timeline is drawn with Pillow from a copy of them)."""
    import matplotlib
    from PIL import Image

    img = (np.asarray(Image.open(png).convert("RGB")) / 255.0)[::2, ::2]  # every other pixel: enough, and fast
    img = img[:, : int(img.shape[1] * 0.9)]  # not the colour bar
    lut = matplotlib.colormaps["magma"](np.linspace(0.3, 1.0, 24))[:, :3]
    d = np.full(img.shape[:2], np.inf)
    for colour in lut:
        d = np.minimum(d, np.abs(img - colour).max(-1))
    return d < 0.02


def test_timeline_shows_a_single_window_person(real, tmp_path):
    # Synthetic: one window at 0-1 s of a 10 s video (the old grid drew one column at 5 s: blank).
    rows = {c: [0.0] for c in COLUMNS}
    rows.update(video=["v.mp4"], person_id=[0], start_frame=[0], end_frame=[9], start_s=[0.0], end_s=[1.0],
                box_w=[5.0], box_h=[5.0])
    rows.update({c: [0.7] for c in CATEGORIES})
    rows.update({v: [5.0] for v in VAD_NAMES})
    render_timeline(make_table(rows), tmp_path / "one.png", duration_s=10.0)
    png = tmp_path / "one.png"
    heat = _heat_pixels(png)
    cols = np.flatnonzero(heat.any(0))
    assert heat.sum() > 500
    assert 0.05 < (cols.max() - cols.min()) / heat.shape[1] < 0.2  # about 1/10 of the axis wide
    assert cols.min() < 0.2 * heat.shape[1]  # at the start, where the window is
    edges, h = window_heat(np.array([2.0, 3.0]), np.array([4.0, 5.0]), np.array([[0.1], [0.9]]), 10.0)
    assert list(edges) == [0.0, 2.0, 3.0, 4.0, 5.0, 10.0]
    np.testing.assert_allclose(h[0], [np.nan, 0.1, 0.1, 0.9, np.nan])  # nearest centre in the overlap
    # Real footage: every person of the street scene, one with a single window among them.
    _, out, _ = real
    table = read_table(out / "bikes.csv")
    counts = table.groupby("person_id").size()
    single = counts[counts == 1].index
    pid = int(single[0]) if len(single) else int(counts.index[0])
    one = table[table.person_id == pid]
    render_timeline(one, tmp_path / "real.png", duration_s=110 / 25.0)
    png = tmp_path / "real.png"
    assert _heat_pixels(png).sum() > 250
    assert (out / "bikes_timeline.png").stat().st_size > 10_000


def test_empty_video_gives_header_only_tables(ckpt, tmp_path, capsys):
    """Nobody in the video (a blank one, with the default pose backend): empty tables, exit 0, a note."""
    from beenet.media.video_writer import write_video

    rng = np.random.default_rng(0)
    write_video(tmp_path / "blank.mp4", (np.full((64, 96, 3), 120, np.uint8) + rng.integers(0, 3, (64, 96, 3)).astype(np.uint8)
                                         for _ in range(12)), 12.0)
    out = tmp_path / "out"
    rc = main(["predict", str(tmp_path / "blank.mp4"), "--checkpoint", str(ckpt), "--out", str(out),
               "--device", "cpu", "--per-frame", "--save-keypoints", "--max-gap", "1.5", "--relink", "2"])
    text = capsys.readouterr().out
    assert rc == 0 and "no person found" in text
    assert (out / "blank.csv").read_text().strip().split(",") == list(COLUMNS)
    from beenet.inference.table import read_table

    tracker = read_table(out / "blank.csv").settings["tracker"]
    assert tracker["max_gap_s"] == 1.5 and tracker["relink_s"] == 2.0  # --max-gap and --relink reached the tracker
    assert (out / "blank_frames.csv").read_text().strip().split(",") == list(FRAME_COLUMNS)
    assert np.load(out / "blank_keypoints.npy").shape == (0, 56)
    assert (out / "blank_timeline.png").is_file()
    summary = json.loads((out / "predict_summary.json").read_text())
    assert "no person found" in summary["videos"][0]["note"] and summary["videos"][0]["windows"] == 0


def test_still_image_is_refused_with_a_message(ckpt, tmp_path, capsys):
    from PIL import Image
    from skimage import data

    jpg = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(jpg)
    rc = main(["predict", str(jpg), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and "astronaut.jpg: a still image" in err and "ffmpeg -loop 1" in err
    with pytest.raises(DataNotFoundError, match="still image"):
        Predictor(ckpt, device="cpu").predict(jpg)


def test_bold_joints_input_keeps_the_bold_key(ckpt, tmp_path):
    root = tmp_path / "BOLD_public"
    video = root / "videos" / "003" / "IzvOYVMltkI.mp4" / "0114.mp4"
    joints = write_joints_clip(video, num_frames=24)
    target = root / "joints" / "003" / "IzvOYVMltkI.mp4" / "0114.npy"
    target.parent.mkdir(parents=True)
    joints.rename(target)
    pred = Predictor(ckpt, device="cpu", window=1.0, stride=1.0, show_progress=False)
    t = pred.predict(target)
    assert set(t["video"]) == {"003/IzvOYVMltkI.mp4/0114.mp4"}
    rc = main(["predict", str(target), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
               "--device", "cpu", "--window", "1", "--per-frame"])
    assert rc == 0
    frames = read_frames_table(tmp_path / "out" / "003" / "IzvOYVMltkI.mp4" / "0114_frames.csv")
    assert set(frames["video"]) == {"003/IzvOYVMltkI.mp4/0114.mp4"}


def test_shard_deals_sorted_jobs_round_robin():
    jobs = [Job(f"v{i}", Path(f"v{i}.mp4"), name=f"v{i}.mp4", stem=f"v{i}") for i in (3, 0, 4, 1, 2)]
    jobs.append(Job("bad", error="bad: no such file"))
    jobs.append(Job("v0 again", Path("v0.mp4"), stem="v0", duplicate_of=jobs[1]))
    shares = [shard(jobs, r, 2) for r in range(2)]
    assert [j.stem for j in shares[0] if j.error is None and j.duplicate_of is None] == ["v0", "v4", "v2"]
    assert [j.stem for j in shares[1]] == ["v3", "v1"]
    assert [j.source for j in shares[0] if j.error or j.duplicate_of] == ["bad", "v0 again"]  # reported once
    assert shard(jobs, 0, 1) == jobs
    for world in (1, 2, 3, 7):
        runs = [j.stem for r in range(world) for j in shard(jobs, r, world) if j.error is None and j.duplicate_of is None]
        assert sorted(runs) == ["v0", "v1", "v2", "v3", "v4"]
    with pytest.raises(ValueError):
        shard(jobs, 2, 2)


def _joints_clips(folder: Path, n: int) -> list[Path]:
    return [write_joints_clip(folder / f"c{i}.mp4", num_frames=18, people=1 + i % 2) for i in range(n)]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith("predict_summary") and p.suffix in (".csv", ".npy")}


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(ckpt, tmp_path):
    clips = _joints_clips(tmp_path / "in", 3)
    args = [*map(str, clips), "--checkpoint", str(ckpt), "--device", "cpu", "--window", "1",
            "--per-frame", "--save-keypoints"]
    assert main(["predict", *args, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "0", "-m", "beenet",
                           "predict", *args, "--out", str(tmp_path / "two"), "--html"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one") and len(_tree(tmp_path / "one")) == 3 * 3
    summaries = [json.loads((tmp_path / "two" / f"predict_summary.rank{r}-of-2.json").read_text()) for r in range(2)]
    done = sorted(v["input"] for s in summaries for v in s["videos"])
    assert done == sorted(str(c) for c in clips) and all(s["status"] == "done" for s in summaries)
    assert [len(s["videos"]) for s in summaries] == [2, 1]
    # --html: the last rank to finish writes the view, over both ranks' videos
    assert proc.stdout.count("index.html") >= 1, proc.stdout  # 2 when both ranks end together
    from beenet.view.results import find_videos

    assert sorted(e.stem for e in find_videos(tmp_path / "two")[0]) == ["c0", "c1", "c2"]
    assert all(f"{c}.html" in (tmp_path / "two" / "index.html").read_text() for c in ("c0", "c1", "c2"))


def test_finished_outputs_are_skipped_unless_overwrite(ckpt, tmp_path, capsys):
    clips = _joints_clips(tmp_path / "in", 2)
    common = ["--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--device", "cpu", "--window", "1"]
    assert main(["predict", str(clips[0]), *common]) == 0
    before = (tmp_path / "out" / "c0.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["predict", *map(str, clips), *common]) == 0  # c0 is done, c1 is not
    text = capsys.readouterr().out
    assert f"skipped {clips[0]}: its outputs exist" in text and f"skipped {clips[1]}" not in text
    assert (tmp_path / "out" / "c1.csv").is_file()
    assert (tmp_path / "out" / "c0.csv").stat().st_mtime_ns == before
    summary = json.loads((tmp_path / "out" / "predict_summary.json").read_text())
    assert [s["input"] for s in summary["skipped"]] == [str(clips[0])] and len(summary["videos"]) == 1
    # An output asked for that is missing (the per-frame table) makes the video unfinished.
    assert main(["predict", str(clips[0]), *common, "--per-frame"]) == 0
    assert (tmp_path / "out" / "c0_frames.csv").is_file()
    before = (tmp_path / "out" / "c0.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["predict", str(clips[0]), *common, "--overwrite"]) == 0
    assert (tmp_path / "out" / "c0.csv").stat().st_mtime_ns != before
    assert "skipped" not in capsys.readouterr().out


def test_iter_predict_yields_one_table_per_video(ckpt, tmp_path):
    a = tmp_path / "a.mp4"
    scene = write_people_video(a, num_frames=24, width=48, height=32, people=2, fps=12.0)
    write_people_video(tmp_path / "b.mp4", num_frames=24, width=48, height=32, people=2, fps=12.0)
    pred = Predictor(ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=1.0, show_progress=False)
    got = list(pred.iter_predict([a, tmp_path / "b.mp4", a]))  # a repeated video is done once
    assert [job.name for job, _ in got] == ["a.mp4", "b.mp4"]
    assert all(set(t["video"]) == {job.name} for job, t in got)
    both = pred.predict([a, tmp_path / "b.mp4"])
    assert list(dict.fromkeys(both["video"])) == ["a.mp4", "b.mp4"] and len(both) == sum(len(t) for _, t in got)
    assert resolve_inputs([a, a])[1].duplicate_of is not None


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "predict_summary.json"}


def _timeless(summary: dict) -> dict:
    """A summary without what depends on the clock (each video's seconds, realtime factor, stage
    seconds)."""
    videos = [{k: v for k, v in e.items() if k not in ("seconds", "realtime_factor", "stage_seconds")}
              for e in summary["videos"]]
    return {**summary, "videos": videos}


def test_predict_many_writes_what_beenet_predict_writes_and_skips_finished_videos(real, ckpt, tmp_path):
    """``Predictor.predict_many`` on the real clips ``beenet predict`` ran on in ``real``, with the
    same settings: the same files, byte for byte, and the same summary (but for the seconds);
    called again, it skips both videos and rewrites nothing."""
    clips, cli_out, _ = real
    out = tmp_path / "api"
    with Predictor(ckpt, device="cpu", window=1.0, stride=0.5, show_progress=False) as pred:
        summary = pred.predict_many(str(clips), out, formats="csv,json", per_frame=True, save_keypoints=True)
        written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != SUMMARY}
        again = pred.predict_many(str(clips), out, formats=["csv", "json"], per_frame=True, save_keypoints=True)
    assert _files(out) == _files(cli_out) and len(_files(out)) == 2 * 8
    cli_summary = json.loads((cli_out / SUMMARY).read_text())
    assert _timeless(summary) == _timeless(cli_summary) and len(summary["videos"]) == 2
    assert summary["status"] == "done" and summary["checkpoint"] == str(ckpt)
    for entry in summary["videos"]:  # what the run waited on: pass 1's stages, the outputs after it
        stages = entry["stage_seconds"]
        assert {"decode", "pose", "track", "total", "outputs"} <= set(stages)
        assert min(stages.values()) >= 0 and stages["total"] + stages["outputs"] == pytest.approx(entry["seconds"], abs=0.01)
    assert again == json.loads((out / SUMMARY).read_text())
    assert again["videos"] == [] and again["failures"] == [] and again["status"] == "done"
    assert sorted(s["input"] for s in again["skipped"]) == sorted(v["input"] for v in summary["videos"])
    assert {p: p.stat().st_mtime_ns for p in written} == written


def test_render_timeline_returns_the_picture_for_a_notebook_and_writes_only_when_asked(tmp_path):
    """Without a path the timeline is only a PIL image (what a notebook cell shows, as PNG); with
    one, the same picture is also written as a PNG."""
    from PIL import Image

    rows = {c: [0.0, 0.0] for c in COLUMNS}
    rows.update(video=["v.mp4"] * 2, person_id=[1, 1], start_frame=[0, 50], end_frame=[99, 149],
                start_s=[0.0, 2.0], end_s=[4.0, 6.0], box_w=[5.0, 5.0], box_h=[5.0, 5.0])
    rows.update({c: [0.6, 0.3] for c in CATEGORIES})
    img = render_timeline(make_table(rows), duration_s=10.0, title="v.mp4")
    assert isinstance(img, Image.Image) and img._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(tmp_path.iterdir())
    again = render_timeline(make_table(rows), tmp_path / "t.png", duration_s=10.0, title="v.mp4")
    assert (np.asarray(Image.open(tmp_path / "t.png").convert("RGB")) == np.asarray(again)).all()
    assert (np.asarray(again) == np.asarray(img)).all()


def test_timeline_names_every_category_of_every_person_shown(tmp_path):
    """13 people, 8 shown (the 8 with the most windows, in id order): each heat map has the 26
    category names drawn at its rows and nothing above them, the person's title above the map
    in the person's colour, and the picture says how many people it shows."""
    from beenet.inference.timeline import LEFT, ROW_H, Panels, person_colour, shown_people, timeline_height

    n = 13
    rows = {c: [0.0] * (n + 3) for c in COLUMNS}
    pids = [*range(n), 12, 11, 12]  # 11 and 12 have the most windows
    rows.update(video=["v.mp4"] * (n + 3), person_id=pids, start_frame=[0] * (n + 3), end_frame=[99] * (n + 3),
                start_s=[float(p) for p in pids], end_s=[p + 4.0 for p in pids],
                box_w=[5.0] * (n + 3), box_h=[5.0] * (n + 3))
    rows.update({c: [0.5] * (n + 3) for c in CATEGORIES})
    table = make_table(rows)
    assert shown_people(table, 8) == ([0, 1, 2, 3, 4, 5, 11, 12], 13)
    img = np.asarray(render_timeline(table, tmp_path / "t.png", duration_s=20.0)).astype(int)
    assert img.shape == (timeline_height(8), 1200, 3)
    for k, pid in enumerate([0, 1, 2, 3, 4, 5, 11, 12]):
        p = Panels.of(k)
        strip = img[:, LEFT - 60: LEFT - 3].mean(-1)  # where the names are, left of the map
        for row in range(len(CATEGORIES)):
            band = strip[p.heat_y + row * ROW_H + 1: p.heat_y + (row + 1) * ROW_H - 1]
            assert (band < 128).sum() > 5, f"no name drawn at row {row} of person {pid}"
        assert not (strip[p.heat_y - 14: p.heat_y - 2] < 128).any()  # nothing above the names
        title = img[p.title_y: p.heat_y - 2, LEFT: LEFT + 300]
        assert (np.abs(title - np.array(person_colour(pid))).max(-1) < 40).sum() > 30
    head = img[: Panels.of(0).title_y].mean(-1)
    assert (head < 128).sum() > 400  # the title, "(showing 8 of 13 people)", and the legend


def test_timeline_greys_out_the_times_a_person_was_not_seen(tmp_path):
    """A 4 s window over 0-4 s of a person seen only from 2 s (frames 50-99 at 25 fps): with
    ``unseen`` (what predict passes, from the tracks), the heat map is drawn from 2 s on only;
    without, over the whole window. ``unseen_times`` closes gaps under half a second."""
    from beenet.inference.timeline import unseen_times

    assert unseen_times(np.arange(50, 100), 25.0, 10.0) == [(0.0, 2.0), (4.0, 10.0)]
    assert unseen_times(np.r_[np.arange(0, 10), np.arange(15, 25)], 25.0, 1.0) == []  # a 0.2 s gap
    assert unseen_times(np.array([], np.int64), 25.0, 3.0) == [(0.0, 3.0)]
    rows = {c: [0.0] for c in COLUMNS}
    rows.update(video=["v.mp4"], person_id=[0], start_frame=[0], end_frame=[99], start_s=[0.0], end_s=[4.0],
                box_w=[5.0], box_h=[5.0])
    rows.update({c: [0.7] for c in CATEGORIES})
    rows.update({v: [5.0] for v in VAD_NAMES})
    spans = {}
    for name, unseen in (("all", None), ("seen", {0: unseen_times(np.arange(50, 100), 25.0, 4.0)})):
        render_timeline(make_table(rows), tmp_path / f"{name}.png", duration_s=4.0, unseen=unseen)
        cols = np.flatnonzero(_heat_pixels(tmp_path / f"{name}.png").any(0))
        spans[name] = (cols.min(), cols.max())
    width = spans["all"][1] - spans["all"][0]
    assert spans["seen"][1] == pytest.approx(spans["all"][1], abs=2)
    assert spans["seen"][0] - spans["all"][0] == pytest.approx(width / 2, rel=0.05)


def test_per_frame_joints_column_and_tables_written_before_it(real, tmp_path):
    """``joints``: how many of the 18 joints each row has (a detection: 4 or more, or 0 for a body
    boxed and not posed). A per-frame table written before the column existed reads back with
    -1 there, its other columns as they were."""
    _, out, _ = real
    frames = read_frames_table(out / "bikes_frames.csv")
    assert list(frames.columns[:10]) == list(FRAME_COLUMNS[:10]) and "joints" in frames.columns
    detected = frames[~frames.interpolated.astype(bool)]
    assert len(detected) and ((detected.joints >= 4) | (detected.joints == 0)).all()
    assert frames.joints.between(0, 18).all()
    old = pd.read_csv(out / "bikes_frames.csv").drop(columns=["joints"])
    old.to_csv(tmp_path / "old_frames.csv", index=False)
    shutil.copy(out / "bikes_frames.meta.json", tmp_path / "old_frames.meta.json")
    back = read_frames_table(tmp_path / "old_frames.csv")
    assert list(back.columns) == list(frames.columns) and (back.joints == -1).all()
    assert back.frame.tolist() == frames.frame.tolist()


def test_timeline_draws_with_pillows_own_font_when_dejavu_is_missing(tmp_path, monkeypatch):
    """The titles are drawn in DejaVu Sans, matplotlib's font, found without importing matplotlib;
    without that file the timeline is still drawn, in Pillow's own font."""
    from beenet.inference import timeline

    rows = {c: [0.0] for c in COLUMNS}
    rows.update(video=["v.mp4"], person_id=[0], start_frame=[0], end_frame=[99], start_s=[0.0], end_s=[4.0],
                box_w=[5.0], box_h=[5.0])
    rows.update({c: [0.4] for c in CATEGORIES})
    found = timeline.font_file()
    assert found is not None and found.name == "DejaVuSans.ttf"
    fresh = subprocess.run([sys.executable, "-c", "import sys; from beenet.inference.timeline import font_file; "
                            "print(font_file().name, 'matplotlib' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.split() == ["DejaVuSans.ttf", "False"]  # found without importing matplotlib
    with_dejavu = np.asarray(render_timeline(make_table(rows), tmp_path / "a.png", duration_s=4.0, title="café.mp4"))
    monkeypatch.setattr(timeline, "font_file", lambda: None)
    timeline._font.cache_clear()
    timeline._category_names.cache_clear()
    try:
        own = np.asarray(render_timeline(make_table(rows), tmp_path / "b.png", duration_s=4.0, title="café.mp4"))
    finally:
        timeline._font.cache_clear()
        timeline._category_names.cache_clear()
    assert own.shape == with_dejavu.shape and (own != with_dejavu).any()  # another font, the same layout
    assert (own[: timeline.TOP].mean(-1) < 128).sum() > 100  # the title and legend drawn
