"""``beenet eval``: scoring a predictions CSV against a BoLD-shaped directory, and the checkpoint path."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beenet.cli import main
from beenet.evaluation.predictions import write_predictions
from beenet.labels import CATEGORIES
from beenet.metrics import bold_scores


def _write_bold(root: Path, seed: int = 0) -> dict[str, list[list[Any]]]:
    """Headerless BoLD annotation CSVs (37 columns; test_meta with 4), no videos or joints."""
    rng = np.random.default_rng(seed)
    ann = root / "annotations"
    ann.mkdir(parents=True)
    # BoLD(root) insists on a videos/ directory (data/bold.py); it stays empty: no clip and no
    # joints file is needed to score predictions.
    (root / "videos").mkdir()
    rows: dict[str, list[list[Any]]] = {}
    counts = {"train": 24, "val": 30, "test": 12}
    start = 0
    for split, n in counts.items():
        rows[split] = []
        for i in range(n):
            k = start + i
            video = f"003/yt{k // 3:04d}.mp4/{k:04d}.mp4"  # clips with 1..3 people
            pid = k % 3
            cats = rng.choice([0.0, 0.2, 0.5, 0.7, 1.0], size=26).round(3).tolist()
            vad = rng.uniform(1, 10, size=3).round(3).tolist()
            row: list[Any] = [video, pid, 10, 120]
            if split != "test":
                row += cats + vad + [1, 2, 3, 0.8]
            rows[split].append(row)
        start += n
        name = "test_meta.csv" if split == "test" else f"{split}.csv"
        with open(ann / name, "w", newline="") as fh:
            csv.writer(fh).writerows(rows[split])
    return rows


def _predict(rows: list[list[Any]], seed: int) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = [(r[0], int(r[1])) for r in rows]
    return keys, rng.random((len(rows), 26)), rng.uniform(1, 10, (len(rows), 3))


def _targets(rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray]:
    # Instances hold float32 labels (data contract): score against the same values.
    arr = np.array([r[4:33] for r in rows], dtype=np.float32).astype(np.float64)
    return arr[:, :26], arr[:, 26:]


def test_help_reads_like_a_man_page(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--predictions FILE", "--checkpoint CKPT", "examples:", "beenet eval --data", "official", "paper"):
        assert needle in text


def test_scores_a_predictions_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _write_bold(tmp_path / "bold")
    keys, cats, vad = _predict(rows["val"], 1)
    order = np.random.default_rng(2).permutation(len(keys))  # row order must not matter
    write_predictions(tmp_path / "p.csv", [keys[i] for i in order], cats[order], vad[order])
    rc = main(["eval", "--data", str(tmp_path / "bold"), "--predictions", str(tmp_path / "p.csv"),
               "--json", str(tmp_path / "out" / "scores.json"), "--out", str(tmp_path / "figs")])
    out = capsys.readouterr().out
    assert rc == 0
    cat_t, vad_t = _targets(rows["val"])
    expected = bold_scores(cats, cat_t, vad, vad_t)
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert saved["split"] == "val" and saved["protocol"] == "official" and saved["n"] == 30
    for key in ("mAP", "mRA", "mR2", "ERS"):
        assert saved[key] == pytest.approx(expected[key], abs=1e-12)
        assert saved["chance"][key] == pytest.approx(expected["chance"][key], abs=1e-12)
    assert saved["per_category"] == expected["per_category"]
    assert saved["excluded_categories"] == expected["excluded_categories"]
    assert "split=val" in out and "protocol=official" in out and f"{expected['ERS']:.4f}" in out
    assert (tmp_path / "figs" / "category_bars.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "pr_curves.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.json"]


def test_official_test_split_has_no_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _write_bold(tmp_path / "bold")
    keys = [(r[0], int(r[1])) for r in rows["test"]]
    write_predictions(tmp_path / "t.csv", keys, np.full((12, 26), 0.5), np.full((12, 3), 5.0))
    rc = main(["eval", "--data", str(tmp_path / "bold"), "--split", "test",
               "--predictions", str(tmp_path / "t.csv"), "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "no labels" in out and "withholds" in out and "12 instances" in out
    assert not (tmp_path / "s.json").exists()


def test_mismatched_predictions_name_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _write_bold(tmp_path / "bold")
    keys, cats, vad = _predict(rows["val"], 3)
    write_predictions(tmp_path / "p.csv", keys[:-2], cats[:-2], vad[:-2])
    rc = main(["eval", "--data", str(tmp_path / "bold"), "--predictions", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "beenet eval: error:" in err and "2 of 30 instance(s) have no row" in err
    assert repr(keys[-2][0]) in err
    # predictions of the val split scored against train: every row is unknown, every instance missing
    write_predictions(tmp_path / "p.csv", keys, cats, vad)
    rc = main(["eval", "--data", str(tmp_path / "bold"), "--split", "train", "--predictions", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and "30 row(s) match no instance" in err and "24 of 24" in err


def test_paper_protocol_scores_its_own_test_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("beenet.data.splits")
    from beenet.data.bold import BoLD

    _write_bold(tmp_path / "bold")
    instances = BoLD(tmp_path / "bold").instances("test", protocol="paper", seed=7)
    assert 0 < len(instances) < 54 and all(inst.categories is not None for inst in instances)
    rng = np.random.default_rng(4)
    cats, vad = rng.random((len(instances), 26)), rng.uniform(1, 10, (len(instances), 3))
    write_predictions(tmp_path / "p.csv", [inst.key for inst in instances], cats, vad)
    rc = main(["eval", "--data", str(tmp_path / "bold"), "--split", "test", "--protocol", "paper",
               "--seed", "7", "--predictions", str(tmp_path / "p.csv"), "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 0
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["protocol"] == "paper" and saved["split"] == "test" and saved["seed"] == 7
    cat_t = np.stack([inst.categories for inst in instances])
    vad_t = np.stack([inst.vad for inst in instances])
    assert saved["ERS"] == pytest.approx(bold_scores(cats, cat_t, vad, vad_t)["ERS"], abs=1e-12)
    assert "protocol=paper" in out and "not comparable" in out


def test_checkpoint_path_forwards_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import beenet.evaluation.evaluate as evaluate_module

    rng = np.random.default_rng(5)
    targets = rng.choice([0.0, 1.0], size=(20, 26))
    vad_t = rng.uniform(1, 10, (20, 3))
    scored = bold_scores(rng.random((20, 26)), targets, vad_t + 1, vad_t)
    calls: list[dict[str, Any]] = []

    def fake(data_dir: Any, checkpoint: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append({"data_dir": data_dir, "checkpoint": checkpoint, **kwargs})
        if kwargs["split"] == "test":
            return {"split": "test", "protocol": "official", "n": 12, "labelled": False,
                    "predictions": str(tmp_path / "ev" / "predictions_test.csv")}
        return {**scored, "split": "val", "protocol": "paper", "labelled": True,
                "plots": [str(tmp_path / "ev" / "category_bars.png")]}

    monkeypatch.setattr(evaluate_module, "evaluate_checkpoint", fake)
    rc = main(["eval", "--data", str(tmp_path), "--checkpoint", str(tmp_path / "c.pt"), "--out",
               str(tmp_path / "ev"), "--batch-size", "4", "--device", "cpu", "--json", str(tmp_path / "m.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert calls[-1] == {"data_dir": tmp_path, "checkpoint": tmp_path / "c.pt", "split": "val", "protocol": None,
                         "seed": None, "out_dir": tmp_path / "ev", "batch_size": 4, "device": "cpu",
                         "prepared_dir": None, "allow_overlap": False}
    assert "protocol=paper" in out and f"{scored['mAP']:.4f}" in out and "category_bars.png" in out
    assert json.loads((tmp_path / "m.json").read_text())["ERS"] == pytest.approx(scored["ERS"])

    rc = main(["eval", "--data", str(tmp_path), "--split", "test", "--protocol", "official", "--seed", "3",
               "--checkpoint", str(tmp_path / "c.pt"), "--out", str(tmp_path / "ev")])
    out = capsys.readouterr().out
    assert rc == 0
    assert calls[-1]["protocol"] == "official" and calls[-1]["seed"] == 3
    assert "no labels" in out and "predictions_test.csv" in out


def test_requires_exactly_one_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--data", str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(tmp_path), "--predictions", "a.csv", "--checkpoint", "b.pt"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_categories_column_order_is_respected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose scores follow the targets exactly scores mAP = mRA = 1 only in BoLD order."""
    rows = _write_bold(tmp_path / "bold")
    keys = [(r[0], int(r[1])) for r in rows["val"]]
    cat_t, vad_t = _targets(rows["val"])
    write_predictions(tmp_path / "p.csv", keys, cat_t, vad_t)
    assert main(["eval", "--data", str(tmp_path / "bold"), "--predictions", str(tmp_path / "p.csv"),
                 "--json", str(tmp_path / "s.json")]) == 0
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["mAP"] == pytest.approx(1.0) and saved["mRA"] == pytest.approx(1.0)
    assert saved["mR2"] == pytest.approx(1.0) and saved["ERS"] == pytest.approx(1.0)
    assert list(saved["per_category"]) == list(CATEGORIES)


@pytest.mark.slow
def test_a_checkpoint_on_a_split_it_trained_on_is_refused_unless_allow_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real tiny checkpoint (paper protocol, split seed 42) scored on another split seed: some
    of those instances come from its training clips. Refused with a message naming the counts;
    --allow-overlap scores it and prints the overlap beside every number."""
    from beenet.data.bold import BoLD
    from beenet.evaluation.evaluate import training_overlap
    from beenet.run_config import load_config
    from beenet.training.loop import train
    from train_helpers import TINY, write_tiny_synth

    data = write_tiny_synth(tmp_path / "synth")
    cfg = load_config("demo", [*TINY, "optim.epochs=1", "run.bn_recalibrate=0"])
    train(cfg, data, tmp_path / "run")
    ckpt = tmp_path / "run" / "best.pt"
    bold = BoLD(data)
    other = bold.instances("val", protocol="paper", seed=7)
    trained = training_overlap(bold, cfg, other)
    assert trained > 0
    assert training_overlap(bold, cfg, bold.instances("test", protocol="paper", seed=42)) == 0
    base = ["eval", "--data", str(data), "--checkpoint", str(ckpt), "--device", "cpu", "--batch-size", "4"]
    assert main([*base, "--split", "val", "--seed", "7"]) == 1
    err = capsys.readouterr().err
    assert f"{trained} of the {len(other)} instances" in err and "--allow-overlap" in err
    assert main([*base, "--split", "train"]) == 1  # its own training split
    capsys.readouterr()
    assert main([*base, "--split", "test"]) == 0  # its own held-out split: no overlap, no note
    assert "OVERLAP" not in capsys.readouterr().out
    assert main([*base, "--split", "val", "--seed", "7", "--allow-overlap", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    note = f"OVERLAP: {trained}/{len(other)} instances"
    for key in ("mAP", "mRA", "mR2", "ERS"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(key + " "))
        assert note in line
    assert json.loads((tmp_path / "s.json").read_text())["overlap"] == trained

    # Frame-level scoring (data.eval_stills=2) on the same checkpoint: two rows per instance.
    import dataclasses

    from beenet.artifacts.loader import load_model
    from beenet.data.dataset import frame_level
    from beenet.evaluation.evaluate import predict_split
    from beenet.metrics import bold_scores

    model, _ = load_model(ckpt, "cpu")
    test = bold.instances("test", protocol="paper", seed=42)
    cats, vad = predict_split(model, bold, test, dataclasses.replace(cfg.data, eval_stills=2), None, 4, "cpu")
    assert cats.shape == (2 * len(test), 26) and vad.shape == (2 * len(test), 3)
    cat_t = frame_level(np.stack([i.categories for i in test]), len(cats))
    assert bold_scores(cats, cat_t, vad, frame_level(np.stack([i.vad for i in test]), len(vad)))["n"] == 2 * len(test)
