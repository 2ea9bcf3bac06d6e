"""``beenet predict``: windows, the table contract, the Predictor end to end, pictures, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _predict_helpers import ScriptedPose, make_checkpoint, make_track, write_people_video
from hypothesis import given, settings
from hypothesis import strategies as st

from beenet.cli import main
from beenet.errors import BoLDFormatError, ConfigError, DataNotFoundError, VideoDecodeError
from beenet.inference.predictor import Predictor
from beenet.inference.table import COLUMNS, PredictionTable, make_table, meta_sidecar, read_table
from beenet.inference.windows import Sampling, plan_windows, window_bounds
from beenet.labels import CATEGORIES, VAD_NAMES

FPS = 12.0


# ----------------------------------------------------------------------------- windows


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), w=st.integers(1, 120), s=st.integers(1, 120))
def test_window_bounds_cover_every_frame(n, w, s):
    bounds = window_bounds(n, w, s)
    assert bounds[0][0] == 0 and bounds[-1][1] == n - 1
    covered = np.zeros(n, bool)
    for a, b in bounds:
        assert 0 <= a <= b < n
        assert b - a + 1 == min(w, n)
        covered[a : b + 1] = True
    if s <= w:  # a stride longer than the window skips frames on purpose
        assert covered.all()
    starts = [a for a, _ in bounds]
    assert starts == sorted(set(starts))


def test_plan_windows_samples_like_the_dataset_at_evaluation():
    present = np.zeros(48, bool)
    present[5:40] = True
    present[20:23] = False
    tracks = {3: make_track(3, present)}
    still = plan_windows(tracks, 48, 12.0, 100, 100, Sampling("still"), window_s=2.0, stride_s=1.0)
    assert [(p.start_frame, p.end_frame) for p in still] == [(0, 23), (12, 35), (24, 47)]
    first = still[0]
    frames = np.flatnonzero(present[0:24])
    assert first.samples == [[int(frames[len(frames) // 2])]]  # BoLDDataset: candidates[len // 2]
    uni = plan_windows(tracks, 48, 12.0, 100, 100, Sampling("uniform", num_frames=4, skeleton_frames=6),
                       window_s=2.0, stride_s=1.0)
    s = uni[0].samples[0]
    assert len(s) == 4 and s == sorted(s) and all(present[f] for f in s)
    assert uni[0].skeleton.shape == (6, 18, 3)
    assert set(uni[0].crop_boxes) == set(s)
    x, y, w, h = uni[0].box
    assert x == pytest.approx(15.0) and w == pytest.approx(17 + 18)  # tight box over the window


def test_plan_windows_skips_people_present_too_briefly():
    present = np.zeros(24, bool)
    present[:3] = True
    plans = plan_windows({0: make_track(0, present)}, 24, 12.0, 100, 100, Sampling("still"), 2.0, 1.0, min_presence=0.25)
    assert plans == []
    plans = plan_windows({0: make_track(0, present)}, 24, 12.0, 100, 100, Sampling("still"), 2.0, 1.0, min_presence=0.1)
    assert len(plans) == 1


def test_averaged_stills():
    present = np.ones(24, bool)
    plans = plan_windows({0: make_track(0, present)}, 24, 12.0, 100, 100, Sampling("still", stills=3), 2.0, 2.0)
    assert [len(s) for s in plans[0].samples] == [1, 1, 1]
    assert [s[0] for s in plans[0].samples] == [4, 12, 20]


# ----------------------------------------------------------------------------- table contract


def _table(n: int = 4, **meta) -> PredictionTable:
    rng = np.random.default_rng(0)
    rows = {c: rng.random(n) for c in COLUMNS}
    rows.update(video=["a.mp4"] * n, person_id=[0, 1, 0, 1][:n], start_frame=np.arange(n) * 10,
                end_frame=np.arange(n) * 10 + 9)
    meta = {"model": "m", "checkpoint_sha256": "ab" * 32, "beenet_version": "0.1.0", "video": "a.mp4", "fps": 25.0, **meta}
    return make_table(rows, {"emotion": rng.random((n, 29))}, **meta)


def test_table_columns_exact_order():
    assert list(COLUMNS) == [
        "video", "person_id", "start_frame", "end_frame", "start_s", "end_s",
        "box_x", "box_y", "box_w", "box_h", *CATEGORIES, "valence", "arousal", "dominance",
    ]
    t = _table()
    assert list(t.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert list(t.columns[len(COLUMNS):]) == [f"emotion.{c}" for c in (*CATEGORIES, *VAD_NAMES)]


def test_table_metadata_survives_slicing_and_groups():
    t = _table()
    for part in (t[t.person_id == 1], t.iloc[1:3], t[["video", "Peace"]], t.head(2), t.sort_values("Peace"), t.copy()):
        assert isinstance(part, PredictionTable)
        assert part.model == "m" and part.fps == 25.0 and part.checkpoint_sha256 == "ab" * 32
    assert list(t.emotions.columns) == list(CATEGORIES)
    assert list(t.vad.columns) == list(VAD_NAMES)
    assert list(t.boxes.columns) == ["box_x", "box_y", "box_w", "box_h"]
    assert t.stream_names == ["emotion"] and list(t.stream("emotion").columns) == [*CATEGORIES, *VAD_NAMES]
    top = t.top_emotions(3)[0]
    assert top[0][1] >= top[1][1] >= top[2][1]
    with pytest.raises(KeyError):
        t.stream("skeleton")


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_table_round_trip_keeps_metadata(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="parquet tables need the parquet extra (pyarrow)")
    t = _table()
    path = t.write(tmp_path / f"a.{fmt}")
    back = read_table(path)
    assert list(back.columns) == list(t.columns)
    assert back.metadata == t.metadata
    np.testing.assert_allclose(back.emotions.to_numpy(), t.emotions.to_numpy(), atol=1e-5)
    assert back["person_id"].tolist() == t["person_id"].tolist()
    if fmt == "csv":
        assert json.loads(meta_sidecar(path).read_text())["model"] == "m"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_damaged_table_is_named_with_what_is_wrong(tmp_path, fmt):
    """A table cut short, overwritten with bytes or holding a bad value: a PredictionsError that
    names the file (and the column), never pandas', json's or pyarrow's bare error."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="parquet tables need the parquet extra (pyarrow)")
    from beenet.errors import PredictionsError

    path = _table().write(tmp_path / f"a.{fmt}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if fmt != "csv" else b"\x00\xff\xfe" * 50)
    with pytest.raises(PredictionsError, match=f"a.{fmt}: not a readable predictions {fmt} file"):
        read_table(path)
    if fmt == "csv":  # readable rows, a person id that is not a number
        _table().write(path)
        lines = path.read_text().splitlines()
        col = lines[0].split(",").index("person_id")
        cells = lines[1].split(",")
        cells[col] = "one"
        path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
        with pytest.raises(PredictionsError, match="column 'person_id' holds a value that is not an integer"):
            read_table(path)
        _table().write(path)
        meta_sidecar(path).write_text("{not json")
        with pytest.raises(PredictionsError, match="is not valid JSON"):
            read_table(path)


# ----------------------------------------------------------------------------- Predictor end to end


@pytest.fixture(scope="module")
def uniform_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(d / "uniform.pt", skeleton=True, body_crop="shared", fusion_form="odds",
                           data_sampling="uniform", data_num_frames=3)


@pytest.fixture(scope="module")
def still_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(d / "still.pt", fusion_form="odds")


@pytest.fixture(scope="module")
def people_video(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    scene = write_people_video(d / "two.mp4", num_frames=30, width=96, height=64, people=2, fps=FPS)
    return d / "two.mp4", scene


def _check_ranges(t: PredictionTable, n_frames: int, width: int, height: int) -> None:
    assert list(t.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert t.notna().all().all()
    assert ((t.emotions >= 0) & (t.emotions <= 1)).all().all()
    assert ((t.vad >= 0) & (t.vad <= 10)).all().all()
    assert (t.start_frame >= 0).all() and (t.end_frame < n_frames).all() and (t.start_frame <= t.end_frame).all()
    np.testing.assert_allclose(t.start_s, t.start_frame / t.fps)
    np.testing.assert_allclose(t.end_s, (t.end_frame + 1) / t.fps)
    assert (t.box_x >= 0).all() and (t.box_y >= 0).all()
    assert (t.box_x + t.box_w <= width + 1e-6).all() and (t.box_y + t.box_h <= height + 1e-6).all()


@pytest.mark.slow
def test_predictor_two_people_with_all_streams(uniform_ckpt, people_video):
    video, scene = people_video
    pred = Predictor(uniform_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.5, stride=1.0,
                     batch_size=3, streams=True)
    res = pred.run(video)
    t = res.table
    assert sorted(t.person_id.unique()) == [0, 1]
    # person 0 is the left one in every window (ids stable across frames)
    left = t[t.person_id == 0].box_x.to_numpy()
    right = t[t.person_id == 1].box_x.to_numpy()
    assert (left < right).all()
    assert len(t) == 2 * len(window_bounds(30, 18, 12))
    _check_ranges(t, 30, 96, 64)
    assert t.metadata["model"] == "googlenet/beenet/emotion+crop+skeleton"
    assert len(t.metadata["checkpoint_sha256"]) == 64 and t.video == "two.mp4" and t.fps == pytest.approx(FPS)
    assert set(t.stream_names) == {"emotion", "crop", "skeleton"}
    for s in t.stream_names:
        st_ = t.stream(s)
        assert ((st_[list(CATEGORIES)] >= 0) & (st_[list(CATEGORIES)] <= 1)).all().all()
    assert res.stats["people"] == 2 and res.timings["model"] > 0 and res.timings["decode"] > 0
    # Each person's own crop and skeleton reach the model: two people in a window get different
    # rows (a random model varies little, so only inequality is asked for).
    a, b = t[t.person_id == 0].stream("skeleton").to_numpy(), t[t.person_id == 1].stream("skeleton").to_numpy()
    assert np.abs(a - b).max() > 0


@pytest.mark.slow
def test_predictor_is_deterministic_and_batch_size_free(still_ckpt, people_video):
    video, scene = people_video
    a = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=1.0, batch_size=1).predict(video)
    b = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=1.0, batch_size=16).predict(video)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), atol=1e-5)


@pytest.mark.slow
def test_memory_stays_flat_on_a_longer_video(tmp_path, still_ckpt, monkeypatch):
    """predict streams: it never reads the video in bulk, and the frames it holds at once do not grow
    with the video's length."""
    from beenet.media.video import VideoReader

    def no_bulk_read(self, indices):
        raise AssertionError("predict must stream with iter_frames, not read() frames in bulk")

    monkeypatch.setattr(VideoReader, "read", no_bulk_read)
    held = {}
    for n in (24, 96):
        scene = write_people_video(tmp_path / f"v{n}.mp4", num_frames=n, width=48, height=32, people=2, fps=FPS)
        res = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=0.5,
                        batch_size=4).run(tmp_path / f"v{n}.mp4")
        held[n] = res.stats["max_frames_held"]
        assert len(res.table) == 2 * len(window_bounds(n, 12, 6))
    assert held[96] <= held[24] + 4, held
    assert held[96] <= 16, held


@pytest.mark.slow
def test_precomputed_bold_joints_keep_their_ids(tmp_path, still_ckpt):
    scene = write_people_video(tmp_path / "clip.mp4", num_frames=24, width=96, height=64, people=2, fps=FPS)
    rows = [[500 + t, pid, *kp.ravel()] for t, people in enumerate(scene) for pid, kp in zip((4, 11), people)]
    np.save(tmp_path / "clip.npy", np.array(rows, dtype=np.float64))
    t = Predictor(still_ckpt, device="cpu", window=1.0, stride=1.0).predict(tmp_path / "clip.mp4", tmp_path / "clip.npy")
    assert sorted(t.person_id.unique()) == [4, 11]
    _check_ranges(t, 24, 96, 64)


def test_bad_inputs_raise_clear_errors(tmp_path, still_ckpt, people_video):
    video, scene = people_video
    pred = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=1.0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        pred.run(broken)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="truncated.mp4"):
        pred.run(truncated)
    empty = tmp_path / "empty.mp4"
    write_people_video(empty, num_frames=12, width=48, height=32, people=0, fps=FPS)
    # Nobody in the video: not an error, an empty table and a note (the CLI exits 0).
    res = Predictor(still_ckpt, device="cpu", pose=ScriptedPose([[]] * 12)).run(empty)
    assert len(res.table) == 0 and list(res.table.columns) == list(COLUMNS)
    assert "no person found" in res.note and len(res.frames) == 0
    wrong = tmp_path / "wrong.npy"
    rows = [[t, 0, *np.tile([5000.0, 5000.0, 0.9], 18)] for t in range(12)]
    np.save(wrong, np.array(rows))
    with pytest.raises(BoLDFormatError, match="wrong.npy.*outside"):
        pred.run(video, wrong)


@pytest.mark.slow
def test_context_input_models_need_real_context(tmp_path, people_video):
    video, scene = people_video
    ckpt = make_checkpoint(tmp_path / "ctx.pt", context_source="sidecar", fusion_context="input", fusion_form="odds")
    with pytest.raises(ConfigError, match="'sidecar'.*--context experts"):
        Predictor(ckpt, device="cpu", pose=ScriptedPose(scene))

    class FlatContext:
        frames_per_clip = 2
        calls = 0

        def label_frames(self, frames):
            assert frames.ndim == 4 and frames.shape[0] == 2
            FlatContext.calls += 1
            v = np.zeros(445, np.float32)
            v[:365] = 1 / 365
            v[365] = 1.0
            return v

    t = Predictor(ckpt, device="cpu", pose=ScriptedPose(scene), context=FlatContext(), window=1.0,
                  stride=1.0).predict(video)
    assert len(t) == 2 * len(window_bounds(30, 12, 12))
    assert FlatContext.calls == len(window_bounds(30, 12, 12))  # once per window, shared by people


# ----------------------------------------------------------------------------- pictures


@pytest.mark.slow
def test_pictures(tmp_path, still_ckpt, people_video):
    from beenet.media.video import VideoReader
    from beenet.inference.render import draw_people, render_timeline, render_video

    video, scene = people_video
    res = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=0.5).run(video)
    picture = render_timeline(res.table, tmp_path / "t.png", duration_s=30 / FPS)
    png = tmp_path / "t.png"
    assert picture.size[1] > 400  # the PIL image itself, for a notebook
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")) / 255.0
    assert img.shape[0] > 400 and img.shape[1] > 800 and img.std() > 0.05
    mp4 = render_video(res, tmp_path / "a.mp4")
    # A 96x64 video is upscaled by an integer factor to at least MIN_RENDER_HEIGHT rows.
    from beenet.inference.render import MIN_RENDER_HEIGHT

    k = -(-MIN_RENDER_HEIGHT // 64)
    with VideoReader(mp4) as r:
        assert r.num_frames == 30 and (r.width, r.height) == (96 * k, 64 * k)
        drawn = r.read([10])[0]
    with VideoReader(video) as r:
        plain = r.read([10])[0]
    plain = np.repeat(np.repeat(plain, k, axis=0), k, axis=1)
    assert np.abs(drawn.astype(int) - plain.astype(int)).mean() > 2  # something was drawn
    frame = np.zeros((40, 60, 3), np.uint8)
    out = draw_people(frame, [(0, scene[0][0], (10, 10, 20, 20), [("Peace", 0.9)], np.array([5, 5, 5]))])
    assert out.shape == frame.shape and out.any() and not frame.any()
    empty = res.table.iloc[0:0]
    render_timeline(empty, tmp_path / "e.png")
    assert (tmp_path / "e.png").is_file()


# ----------------------------------------------------------------------------- CLI


def test_cli_help_reads_like_a_man_page(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("examples:", "beenet predict talk.mp4", "--window", "Exit status", "OpenPose"):
        assert word in text


@pytest.mark.slow
def test_cli_processes_good_inputs_and_reports_bad_ones(tmp_path, still_ckpt, capsys):
    scene = write_people_video(tmp_path / "in" / "good.mp4", num_frames=24, width=96, height=64, people=2, fps=FPS)
    rows = [[t, pid, *kp.ravel()] for t, people in enumerate(scene) for pid, kp in zip((0, 1), people)]
    np.save(tmp_path / "in" / "good.npy", np.array(rows))
    (tmp_path / "in" / "broken.mp4").write_bytes(b"not a video at all")
    # an OpenPose JSON folder beside its video
    op = tmp_path / "in" / "op"
    op.mkdir()
    for t, people in enumerate(scene):
        doc = {"people": [{"pose_keypoints_2d": kp.ravel().tolist()} for kp in people]}
        (op / f"op_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    (tmp_path / "in" / "op.mp4").write_bytes((tmp_path / "in" / "good.mp4").read_bytes())
    # keypoints of another (longer) video
    np.save(tmp_path / "in" / "mismatch.npy", np.array(rows + [[99, 0, *rows[0][2:]]]))
    (tmp_path / "in" / "mismatch.mp4").write_bytes((tmp_path / "in" / "good.mp4").read_bytes())
    out = tmp_path / "out"
    code = main(["predict", str(tmp_path / "in" / "good.npy"), str(tmp_path / "in" / "broken.mp4"), str(op),
                 str(tmp_path / "in" / "mismatch.npy"), str(tmp_path / "nowhere.mp4"), "--checkpoint", str(still_ckpt),
                 "--out", str(out), "--format", "csv,json", "--window", "1", "--stride", "1", "--video", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    for bad in ("broken.mp4", "mismatch.npy", "nowhere.mp4"):
        assert f"FAILED {tmp_path / 'in' / bad if bad != 'nowhere.mp4' else tmp_path / bad}" in captured.err
    assert "2 of 5 inputs done, 3 failed" in captured.out
    for stem in ("good", "op"):
        t = read_table(out / f"{stem}.csv")
        assert len(t) == 4 and sorted(t.person_id.unique()) == [0, 1]
        assert read_table(out / f"{stem}.json").metadata["checkpoint_sha256"] == t.metadata["checkpoint_sha256"]
        assert (out / f"{stem}_timeline.png").stat().st_size > 10_000
        assert (out / f"{stem}_annotated.mp4").is_file()
    summary = json.loads((out / "predict_summary.json").read_text())
    assert len(summary["videos"]) == 2 and len(summary["failures"]) == 3


def test_cli_usage_errors(tmp_path, still_ckpt, capsys):
    assert main(["predict", "x.mp4", "--checkpoint", str(still_ckpt), "--out", str(tmp_path), "--format", "xls"]) == 2
    assert "--format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["predict", "x.mp4", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_folder_input_names_clashing_stems(tmp_path):
    from beenet.inference.inputs import resolve_inputs

    for d in ("a", "b"):
        (tmp_path / "vids" / d).mkdir(parents=True)
        (tmp_path / "vids" / d / "0001.mp4").write_bytes(b"")
    (tmp_path / "vids" / "x.txt").write_text("")
    jobs = resolve_inputs([str(tmp_path / "vids")])
    assert [j.name for j in jobs] == ["a/0001.mp4", "b/0001.mp4"]
    assert len({j.stem for j in jobs}) == 2 and all(j.stem.endswith("0001") for j in jobs)
    none = resolve_inputs([str(tmp_path / "vids" / "a" / "0001.npy")])
    assert none[0].error is not None


# ----------------------------------------------------------------------------- several videos


def test_predict_takes_a_folder_and_a_list(tmp_path, still_ckpt):
    """``Predictor.predict`` takes what ``beenet predict`` takes: a folder (its videos, sorted) or a
    list, and answers with one table whose ``video`` column tells the videos apart."""
    clips = tmp_path / "clips"
    scene = write_people_video(clips / "b" / "x.mp4", num_frames=24, width=48, height=32, people=2, fps=FPS)
    write_people_video(clips / "a" / "x.mp4", num_frames=24, width=48, height=32, people=2, fps=FPS)
    write_people_video(tmp_path / "solo.mp4", num_frames=24, width=48, height=32, people=2, fps=FPS)
    (clips / "notes.txt").write_text("not a video")
    pred = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene), window=1.0, stride=1.0)
    one = pred.predict(tmp_path / "solo.mp4")
    assert set(one["video"]) == {"solo.mp4"} and one.metadata["video"] == "solo.mp4"

    folder = pred.predict(clips)
    assert isinstance(folder, PredictionTable) and len(folder) == 2 * len(one)
    assert list(dict.fromkeys(folder["video"])) == ["a/x.mp4", "b/x.mp4"]
    assert folder.metadata["video"] is None and folder.metadata["fps"] == FPS
    assert folder.metadata["checkpoint_sha256"] == one.metadata["checkpoint_sha256"]
    assert list(folder.index) == list(range(len(folder)))
    cols = [c for c in folder.columns if c != "video"]
    for name in ("a/x.mp4", "b/x.mp4"):  # same pixels, same rows as the single video
        part = folder[folder["video"] == name]
        np.testing.assert_allclose(part[cols].to_numpy(float), one[cols].to_numpy(float), atol=1e-6)

    listed = pred.predict([str(tmp_path / "solo.mp4"), clips / "a"])
    assert list(dict.fromkeys(listed["video"])) == ["solo.mp4", "x.mp4"]
    clash = pred.predict([clips / "b" / "x.mp4", clips / "a"])  # two videos called x.mp4
    assert list(dict.fromkeys(clash["video"])) == [str(clips / "b" / "x.mp4"), str(clips / "a" / "x.mp4")]


def test_predict_names_inputs_it_cannot_use(tmp_path, still_ckpt, people_video):
    video, scene = people_video
    pred = Predictor(still_ckpt, device="cpu", pose=ScriptedPose(scene))
    with pytest.raises(DataNotFoundError, match="nowhere.mp4: no such file"):
        pred.predict([video, tmp_path / "nowhere.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="empty: no video files"):
        pred.predict(tmp_path / "empty")
    with pytest.raises(ConfigError, match="one video"):
        pred.predict([video, video], keypoints=tmp_path / "x.npy")


def test_label_panels_of_people_side_by_side_do_not_cover_each_other():
    """Three pedestrians close together in a 1280x720 frame (as in vtest.avi at 720p): each label
    panel inside the frame, none over another; a close-up's panel is not put over the head."""
    from beenet.inference.render import _overlap, place_panels

    boxes = [(500.0, 300.0, 60.0, 150.0), (540.0, 310.0, 60.0, 150.0), (580.0, 290.0, 60.0, 150.0)]
    sizes = [(224.0, 150.0)] * 3
    corners = place_panels(boxes, sizes, 1280, 720)
    rects = [(x, y, w, h) for (x, y), (w, h) in zip(corners, sizes)]
    assert all(0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720 for x, y, w, h in rects)
    assert all(_overlap(a, b) == 0 for i, a in enumerate(rects) for b in rects[i + 1:]), rects
    # One person filling the frame: no room above or below; the panel goes low in the box, off the head.
    (x, y), = place_panels([(100.0, 0.0, 400.0, 720.0)], [(224.0, 150.0)], 640, 720)
    assert y >= 720 / 4 and y + 150 <= 720
    # Alone with room above: above the box, left-aligned with it, as before.
    assert place_panels([(300.0, 400.0, 60.0, 150.0)], [(224.0, 150.0)], 1280, 720) == [(300.0, 248.0)]
