"""The synthetic BoLD: exact layout, determinism, rules, sidecar context and the CLI."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from beenet.context.sidecar import SidecarContext
from beenet.data import synth
from beenet.data.synth import render as synth_render
from beenet.data.synth import SCENES, SynthConfig, generate, oracle_report, plan_dataset, render_clip
from beenet.errors import BoLDFormatError, DataNotFoundError
from beenet.labels import CATEGORIES, COCO_CLASSES, MIN_KEYPOINT_CONFIDENCE, NUM_COCO, NUM_PLACES

TINY = SynthConfig(num_clips=14, seed=5, width=64, height=48, min_frames=12, max_frames=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synth.SynthPlan]:
    root = tmp_path_factory.mktemp("synth") / "bold"
    result = generate(root, TINY, workers=1, show_progress=False)
    return root, result.plan


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _decoded(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        return n, float(stream.average_rate)


def test_layout_is_bold(tiny) -> None:
    root, plan = tiny
    assert sorted(p.name for p in root.iterdir()) == ["README.txt", "annotations", "beenet-synth.json", "joints",
                                                     "synthetic_context.json", "videos"]
    assert "SYNTHETIC" in (root / "README.txt").read_text() and "seed: 5" in (root / "README.txt").read_text()
    rows = {s: _csv(root / "annotations" / f) for s, f in
            (("train", "train.csv"), ("val", "val.csv"), ("test", "test_meta.csv"))}
    assert all(len(r) == 37 for r in rows["train"] + rows["val"])
    assert all(len(r) == 4 for r in rows["test"])
    assert rows["train"] and rows["test"]
    for r in rows["train"] + rows["val"] + rows["test"]:  # headerless: every row is data
        assert r[0].startswith("003/") and r[0].endswith(".mp4") and r[0].count("/") == 2
        int(r[1]), int(r[2]), int(r[3])
    for r in rows["train"] + rows["val"]:
        cats = np.array(r[4:30], dtype=float)
        vad = np.array(r[30:33], dtype=float)
        assert ((cats >= 0) & (cats <= 1)).all() and ((vad >= 1) & (vad <= 10)).all()
    # clip-disjoint split covering every clip
    clips = {s: {r[0] for r in rs} for s, rs in rows.items()}
    assert not (clips["train"] & clips["val"]) and not (clips["train"] & clips["test"])
    assert not (clips["val"] & clips["test"])
    assert set().union(*clips.values()) == {c.video for c in plan.clips}
    # nested paths: '<id>.mp4' is a directory holding numbered clips, some holding several
    ids = Counter(c.video.split("/")[1] for c in plan.clips)
    assert max(ids.values()) > 1
    for clip in plan.clips:
        video = root / "videos" / clip.video
        joints = root / "joints" / (clip.video[: -len(".mp4")] + ".npy")
        assert video.is_file() and video.parent.is_dir() and video.parent.name.endswith(".mp4")
        assert joints.is_file() and joints.parent.name.endswith(".mp4")


def test_videos_and_joints_agree(tiny) -> None:
    root, plan = tiny
    ann = {(r[0], int(r[1])): (int(r[2]), int(r[3])) for f in ("train.csv", "val.csv", "test_meta.csv")
           for r in _csv(root / "annotations" / f)}
    rates, gaps, bystanders, shuffled, low, zero = set(), 0, 0, 0, 0, 0
    for clip in plan.clips:
        n, fps = _decoded(root / "videos" / clip.video)
        assert n == clip.num_frames
        rates.add(round(fps, 3))
        arr = np.load(root / "joints" / (clip.video[:-4] + ".npy"))
        assert arr.dtype == np.float64 and arr.ndim == 2 and arr.shape[1] == 56
        frames = arr[:, 0].astype(np.int64)
        assert frames.min() == clip.frame_offset  # absolute numbering, first frame present
        assert frames.max() - frames.min() < n
        shuffled += int(np.any(np.diff(frames) < 0))
        kp = arr[:, 2:].reshape(len(arr), 18, 3)
        low += int(((kp[..., 2] > 0) & (kp[..., 2] < MIN_KEYPOINT_CONFIDENCE)).sum())
        zero += int((kp == 0).all(axis=2).sum())
        annotated = {pid for (v, pid) in ann if v == clip.video}
        ids = set(np.unique(arr[:, 1]).astype(int))
        assert annotated <= ids
        bystanders += len(ids - annotated)
        for pid in annotated:
            own = np.sort(frames[arr[:, 1] == pid])
            assert len(np.unique(own)) == len(own)  # one row per frame
            first, last = ann[(clip.video, pid)]
            assert (first, last) == (own[0], own[-1])  # CSV min/max frame == the joints' numbering
            gaps += int(len(own) < last - first + 1)
    assert rates <= {23.976, 25.0, 29.97, 30.0} and len(rates) > 1
    assert gaps > 0 and bystanders > 0 and shuffled > 0 and low > 0 and zero > 0


def test_figures_are_drawn_from_the_written_joints() -> None:
    plan = plan_dataset(TINY)
    clip = max(plan.clips, key=lambda c: len(c.people))
    frames, joints = render_clip(clip, TINY.width, TINY.height)
    empty, _ = render_clip(dataclasses.replace(clip, people=()), TINY.width, TINY.height)
    hit = total = 0
    for row in joints:
        t = int(row[0]) - clip.frame_offset
        kp = row[2:].reshape(18, 3)
        ok = kp[:, 2] >= MIN_KEYPOINT_CONFIDENCE
        xy = np.round(kp[ok, :2]).astype(int).clip(0, [TINY.width - 1, TINY.height - 1])
        diff = np.abs(frames[t].astype(int) - empty[t].astype(int)).sum(-1)
        # within one pixel of a written joint, the frame shows the figure, not the background
        near = [diff[max(0, y - 1):y + 2, max(0, x - 1):x + 2].max() > 0 for x, y in xy]
        hit += sum(near)
        total += len(near)
    assert total > 0 and hit / total > 0.95


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, num_clips=4)
    a = generate(tmp_path / "a", cfg, workers=1, show_progress=False).root
    b = generate(tmp_path / "b", cfg, workers=2, show_progress=False).root
    c = generate(tmp_path / "c", dataclasses.replace(cfg, seed=6), workers=1, show_progress=False).root
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".csv", ".npy", ".json"))
    assert len(files) == 3 + 4 + 2  # CSVs, joints, the sidecar and the beenet-synth.json manifest
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "annotations/train.csv").read_bytes() != (c / "annotations/train.csv").read_bytes()


def test_every_category_positive_and_context_needed() -> None:
    plan = plan_dataset(SynthConfig(num_clips=60, seed=0))
    y = np.array([p.categories for _, p in plan.instances()]) >= 0.5
    assert y.shape[1] == len(CATEGORIES) and (y.sum(axis=0) >= 1).all()
    big = plan_dataset(SynthConfig(num_clips=200, seed=0))
    for split in ("val", "test"):  # stratified split: AP/AUC defined for every category
        ys = np.array([p.categories for _, p in big.instances(split)]) >= 0.5
        assert (ys.sum(axis=0) >= 1).all() and (~ys).sum(axis=0).min() >= 1
    rates = np.array(list(oracle_report(big)["positive_rate"].values()))
    assert rates.min() >= 0.02
    report = oracle_report(big)
    assert report["ambiguous_fraction"] == 1.0
    acc = report["group_accuracy"]
    assert acc["rules"]["body_only"] < 0.6 < acc["rules"]["body_scene"]
    assert acc["body_only"] < acc["body_scene"]
    o = report["oracle"]
    assert o["body_context"]["ERS"] > o["body_only"]["ERS"] + 0.15
    assert o["body_context"]["mAP"] > o["body_only"]["mAP"] + 0.2


def test_oracle_is_scored_with_the_bold_metric() -> None:
    # the oracle rows are bold_scores of the oracles' predictions: no second metric to drift
    from beenet.data.synth.oracle import oracle_predictions, oracle_targets
    from beenet.metrics import HEADLINE_KEYS, bold_scores

    plan = plan_dataset(SynthConfig(num_clips=30, seed=2))
    report = oracle_report(plan)
    categories, vad = oracle_targets(plan)
    assert categories.shape == (report["instances"], len(CATEGORIES)) and vad.shape == (report["instances"], 3)
    for name, (cat_pred, vad_pred) in oracle_predictions(plan).items():
        scores = bold_scores(cat_pred, categories, vad_pred, vad)
        assert report["oracle"][name] == {k: scores[k] for k in HEADLINE_KEYS}
    assert set(report["oracle"]) == {"body_context", "body_only"}


def test_scene_decides_the_emotion() -> None:
    # same archetype, other scene, other group: the table must really need the context
    for archetype, row in synth.EMOTION_TABLE.items():
        assert len(set(row.values())) >= 2, archetype
    e_party = synth.expected_scores("arms_up", "party", [])
    e_hosp = synth.expected_scores("arms_up", "hospital", [])
    assert e_party[CATEGORIES.index("Happiness")] > 0.5 > e_hosp[CATEGORIES.index("Happiness")]
    assert e_hosp[CATEGORIES.index("Fear")] > 0.5 > e_party[CATEGORIES.index("Fear")]
    fear = CATEGORIES.index("Fear")
    assert synth.expected_scores("relaxed", "beach", ["knife"])[fear] > synth.expected_scores("relaxed", "beach", [])[fear]


def test_sidecar_vectors(tiny) -> None:
    root, plan = tiny
    data = json.loads((root / "synthetic_context.json").read_text())
    assert data["version"] == 1 and data["scenes"] == {k: v for k, (v, _) in SCENES.items()}
    assert all(COCO_CLASSES[i] == name for name, i in data["objects"].items())
    ctx = SidecarContext(root)
    assert ctx.name == "sidecar" and ctx.fingerprint.startswith("sidecar-")
    vecs = ctx.vectors()
    assert set(vecs) == {c.video for c in plan.clips}
    for clip in plan.clips:
        v = ctx.label_clip(clip.video)
        assert v.dtype == np.float32 and v.shape == (NUM_PLACES + NUM_COCO,)
        places, objects = v[:NUM_PLACES], v[NUM_PLACES:]
        assert places[SCENES[clip.scene][0]] == 1.0 and places.sum() == pytest.approx(1.0)
        counts = Counter(COCO_CLASSES.index(o.name) for o in clip.objects)
        expect = np.zeros(NUM_COCO)
        for k, n in counts.items():
            expect[k] = n / sum(counts.values())
        np.testing.assert_allclose(objects, expect, atol=1e-6)
    smooth = SidecarContext(root, place_smoothing=0.1).vector(plan.clips[0].video)
    assert smooth[:NUM_PLACES].sum() == pytest.approx(1.0) and smooth[:NUM_PLACES].min() > 0
    assert SidecarContext(root, place_smoothing=0.1).fingerprint != ctx.fingerprint


def test_sidecar_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="synthetic_context.json"):
        SidecarContext(tmp_path)
    side = tmp_path / "synthetic_context.json"
    side.write_text(json.dumps({"version": 1, "scenes": {"beach": 48}, "objects": {"cup": 41},
                                "clips": {"003/a.mp4/0001.mp4": {"scene": "beach", "objects": []}}}))
    ctx = SidecarContext(tmp_path)
    v = ctx.label_clip("003/a.mp4/0001.mp4")
    assert v[48] == 1.0 and not v[NUM_PLACES:].any()  # no objects: all zeros
    with pytest.raises(DataNotFoundError, match="0002"):
        ctx.label_clip("003/a.mp4/0002.mp4")
    before = ctx.fingerprint
    side.write_text(json.dumps({"version": 1, "scenes": {"beach": 48}, "objects": {"cup": 41},
                                "clips": {"003/a.mp4/0001.mp4": {"scene": "beach", "objects": ["cup"]}}}))
    assert SidecarContext(tmp_path).fingerprint != before
    side.write_text(json.dumps({"version": 1, "scenes": {"beach": 400}, "objects": {}, "clips": {}}))
    with pytest.raises(BoLDFormatError, match="beach"):
        SidecarContext(tmp_path)
    side.write_text("{not json")
    with pytest.raises(BoLDFormatError):
        SidecarContext(tmp_path)


def test_reader_reads_it_like_bold(tiny) -> None:
    bold_mod = pytest.importorskip("beenet.data.bold")
    joints_mod = pytest.importorskip("beenet.data.joints")
    root, plan = tiny
    bold = bold_mod.BoLD(root)
    for split in ("train", "val", "test"):
        insts = bold.instances(split)
        expect = plan.instances(split)
        assert [(i.video, i.person_id) for i in insts] == [(c.video, p.person_id) for c, p in expect]
        for inst, (clip, person) in zip(insts, expect):
            if split != "test":
                np.testing.assert_allclose(inst.categories, person.categories, atol=1e-6)
                np.testing.assert_allclose(inst.vad, person.vad, atol=1e-4)
            pj = joints_mod.load_person_joints(bold.joints_path(inst.video), inst.person_id, clip.num_frames)
            assert pj.frame_offset == clip.frame_offset
            assert pj.present[person.start] and pj.present[person.end]
            assert not pj.present[list(person.dropped)].any()
            assert pj.present.sum() == person.end - person.start + 1 - len(person.dropped)


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = synth_render.write_clip

    def boom(root: str, clip: synth.ClipPlan, w: int, h: int) -> str:
        calls.append(clip.video)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(root, clip, w, h)

    monkeypatch.setattr(synth_render, "write_clip", boom)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "out", dataclasses.replace(TINY, num_clips=3), workers=1, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_non_empty_and_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from beenet.cli import main

    out = tmp_path / "syn"
    args = ["synth", str(out), "--clips", "2", "--size", "48x32", "--frames", "10-12", "--workers", "1",
            "--no-progress", "--seed", "1"]
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(args) == 1
    assert "not empty" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    assert main(args + ["--overwrite"]) == 1  # not a synth output: never deleted
    assert "does not look like" in capsys.readouterr().err and (out / "notes.txt").exists()
    (out / "notes.txt").unlink()
    assert main(args) == 0  # an empty directory is fine
    report = capsys.readouterr().out
    assert "wrote 2 synthetic clips" in report and "oracle" in report
    first = (out / "annotations" / "train.csv").read_bytes()
    assert main(args) == 1
    assert main(args + ["--overwrite", "--seed", "2"]) == 0
    assert (out / "annotations" / "train.csv").read_bytes() != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_help_reads_like_a_man_page(capsys: pytest.CaptureFixture[str]) -> None:
    from beenet.cli.synth import build_parser

    with pytest.raises(SystemExit):
        build_parser("beenet synth").parse_args(["--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "beenet synth synth-bold" in text and "--overwrite" in text
    with pytest.raises(SystemExit):
        build_parser("beenet synth").parse_args(["x", "--size", "63x48"])
