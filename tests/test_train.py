"""The training loop: run directory, priors, validation, exact resume, refusals, the CLI."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import yaml

from beenet.cli import main
from beenet.errors import CheckpointError, ConfigError
from beenet.artifacts.checkpoint import load_checkpoint
from beenet.run_config import RunConfig, load_config
from beenet.training.loop import train
from beenet.training.optim import lr_factor
from train_helpers import TINY, csv_rows, restore_root_logging, tiny_config, write_tiny_synth


_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_tiny_synth(tmp_path_factory.mktemp("data") / "synth")



@pytest.mark.slow
def test_run_directory_and_priors(synth, tmp_path):
    cfg = tiny_config("demo")
    out = tmp_path / "run"
    result = train(cfg, synth, out)
    for name in ("config.yaml", "metrics.csv", "best.pt", "last.pt", "train.log"):
        assert (out / name).is_file(), name
    # config.yaml is the resolved config and reloads to the same thing.
    assert RunConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text())) == cfg
    rows = csv_rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for key in ("lr", "train_loss", "train_categories", "train_vad", "val_mAP", "val_mRA", "val_mR2", "val_ERS", "time_s"):
        assert key in rows[0] and rows[0][key] != "", key
    ers = [float(r["val_ERS"]) for r in rows]
    assert result["best"]["ERS"] == pytest.approx(max(ers), abs=1e-5)
    assert result["best_epoch"] == 1 + int(np.argmax(ers))
    last = load_checkpoint(out / "last.pt")
    best = load_checkpoint(out / "best.pt")
    assert last["epoch"] == 1 and best["epoch"] == result["best_epoch"] - 1
    assert {"optimizer", "scheduler", "rng"} <= set(last)
    assert last["config"] == cfg.to_dict()
    # The priors were fitted on the training split only: their VAD mean is the train mean.
    from beenet.data.bold import BoLD

    train_inst = BoLD(synth).instances("train", protocol="paper", seed=42)
    vad_mean = np.stack([i.vad for i in train_inst]).mean(0)
    key = next(k for k in last["model"] if k.endswith("vad_mean"))
    np.testing.assert_allclose(last["model"][key].numpy(), vad_mean, rtol=1e-5)
    assert "epoch 2/2" in (out / "train.log").read_text()


@pytest.mark.slow
def test_exact_resume_is_bit_identical(synth, tmp_path):
    # Dropout on, shuffling, random stills: everything that draws randomness is exercised.
    cfg = tiny_config("demo", ["optim.epochs=3", "model.dropout=0.5", "optim.schedule=step", "optim.step_epochs=1"])
    full, cut = tmp_path / "full", tmp_path / "cut"
    train(cfg, synth, full)
    train(cfg, synth, cut, stop_after_epoch=0)
    assert load_checkpoint(cut / "last.pt")["epoch"] == 0
    train(cfg, synth, cut, resume=True)
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(cut / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ra, rb = csv_rows(full / "metrics.csv"), csv_rows(cut / "metrics.csv")
    assert len(ra) == len(rb) == 3
    for x, y in zip(ra, rb):
        x.pop("time_s"), y.pop("time_s")
        assert x == y


def test_refuses_to_overwrite_and_to_resume_nothing(synth, tmp_path):
    cfg = tiny_config("demo", ["optim.epochs=1"])
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="never overwrites"):
        train(cfg, synth, out)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(cfg, synth, out, resume=True)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_resume_with_another_config_is_refused(synth, tmp_path):
    cfg = tiny_config("demo", ["optim.epochs=1"])
    out = tmp_path / "run"
    train(cfg, synth, out)
    other = tiny_config("demo", ["optim.epochs=2", "optim.lr=0.5"])
    with pytest.raises(ConfigError, match="optim.lr"):
        train(other, synth, out, resume=True)
    # A longer schedule is a legal change: one more epoch.
    train(tiny_config("demo", ["optim.epochs=2"]), synth, out, resume=True)
    assert [int(r["epoch"]) for r in csv_rows(out / "metrics.csv")] == [1, 2]


def test_lr_schedules():
    cfg = load_config("paper")
    assert [lr_factor(e, cfg) for e in (0, 44, 45, 89)] == pytest.approx([1, 1, 0.1, 0.1])
    cfg = load_config("paper", ["optim.schedule=cosine", "optim.epochs=10", "optim.warmup_epochs=1"])
    f = [lr_factor(e, cfg) for e in range(10)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[1:], f[2:])) and f[-1] > 0


def test_cli_train_help_and_config(synth, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--resume" in text and "torchrun" in text
    assert main(["train", "--data", str(synth), "--out", str(tmp_path / "r"), "--config", "demo",
                 "--epochs", "3", "--set", "optim.lr=0.01", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["epochs"] == 3 and printed["optim"]["lr"] == 0.01
    assert main(["train", "--data", str(synth), "--out", str(tmp_path / "r"), "--set", "optim.lrr=1"]) == 1
    assert "optim.lrr" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_train_runs_and_resumes(synth, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(synth), "--out", str(out), "--config", "demo", "--epochs", "1"]
    sets = [x for t in TINY if not t.startswith("optim.epochs") for x in ("--set", t)]
    assert main(args + sets) == 0
    report = capsys.readouterr().out
    assert "best.pt" in report and "paper protocol" in report and "chance" in report
    # Again without --resume: refused, the run is kept.
    assert main(args + sets) == 1
    assert "--resume" in capsys.readouterr().err
    # --resume reads RUN/config.yaml; --epochs extends the run.
    assert main(["train", "--data", str(synth), "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


@pytest.mark.slow
def test_loader_workers_do_not_change_the_run(synth, tmp_path):
    # Persistent workers learn the epoch from the sampler: 2 workers train exactly as 0 do.
    base = ["optim.epochs=2", "model.dropout=0.0"]
    train(tiny_config("demo", base + ["run.num_workers=0"]), synth, tmp_path / "w0")
    train(tiny_config("demo", base + ["run.num_workers=2"]), synth, tmp_path / "w2")
    a, b = load_checkpoint(tmp_path / "w0" / "last.pt"), load_checkpoint(tmp_path / "w2" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


@pytest.mark.slow
def test_missing_videos_are_left_out_with_a_warning(tmp_path, caplog):
    """Real BoLD downloads miss clips: training goes on without them and says so."""
    from beenet.data.bold import BoLD

    data = write_tiny_synth(tmp_path / "synth")
    train_inst = BoLD(data).instances("train", protocol="paper", seed=42)
    gone = train_inst[0].video
    (BoLD(data).video_path(gone)).unlink()
    with caplog.at_level("WARNING", logger="beenet"):
        result = train(tiny_config("demo", ["optim.epochs=1"]), data, tmp_path / "run")
    assert result["epochs_done"] == 1
    assert any("left out" in r.getMessage() and gone in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_video_preset_trains_and_evaluates_end_to_end(synth, tmp_path, capsys):
    """`beenet train --config video` (frames over time, crop, skeleton, all streams fused) then
    `beenet eval --checkpoint` on the synthetic data, with per-stream scores from the model."""
    import json

    out = tmp_path / "video-run"
    sets = [x for t in TINY if not t.startswith("optim.epochs") for x in ("--set", t)]
    assert main(["train", "--data", str(synth), "--out", str(out), "--config", "video", "--epochs", "1"] + sets) == 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["config"]["model"]["skeleton"] and ckpt["config"]["model"]["body_crop"] != "none"
    assert ckpt["config"]["data"]["sampling"] == "uniform"
    ev = tmp_path / "ev"
    assert main(["eval", "--data", str(synth), "--checkpoint", str(out / "best.pt"), "--split", "test",
                 "--out", str(ev), "--json", str(tmp_path / "m.json")]) == 0
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["split"] == "test" and scores["protocol"] == "paper" and scores["n"] > 0
    assert all(np.isfinite(scores[k]) for k in ("mAP", "mRA", "mR2", "ERS"))
    assert (ev / "category_bars.png").is_file() and (ev / "pr_curves.png").is_file()
    from beenet.artifacts.loader import load_model

    model, _ = load_model(out / "best.pt", device="cpu")
    assert {"emotion", "crop", "skeleton"} <= set(model.stream_names)


@pytest.mark.slow
def test_bn_recalibrate_recomputes_batchnorm_statistics_before_validation(synth, tmp_path):
    """run.bn_recalibrate=N: the saved BatchNorm statistics are a plain average over N training
    batches (num_batches_tracked == N), the weights are untouched; 0 keeps training's averages."""
    runs = {}
    for n in (0, 2):
        cfg = tiny_config("demo", ["optim.epochs=2", "model.dropout=0.5", "optim.batch_size=4",
                                   f"run.bn_recalibrate={n}"])
        train(cfg, synth, tmp_path / f"bn{n}")
        runs[n] = load_checkpoint(tmp_path / f"bn{n}" / "last.pt")["model"]
    off, on = runs[0], runs[2]
    counts = {k: int(v) for k, v in on.items() if k.endswith("num_batches_tracked")}
    assert counts and set(counts.values()) == {2}
    assert all(int(off[k]) > 2 for k in counts)  # training steps of one epoch
    # The weights are those of the run without recalibration: it touches no RNG that training reads.
    stats = [k for k in on if k.endswith("running_var")]
    assert any(not torch.equal(off[k], on[k]) for k in stats)
    for k in on:
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(off[k], on[k]), k
    assert load_config("paper").run.bn_recalibrate == 0 and load_config("demo").run.bn_recalibrate == 25


def test_tensorboard_event_files_carry_the_metrics_rows(synth, tmp_path):
    """With the tensorboard package installed, training writes event files whose scalars are the
    numbers of metrics.csv; run.tensorboard=off writes none."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config("demo", ["optim.epochs=2", "run.bn_recalibrate=0"])
    train(cfg, synth, tmp_path / "tb")
    ea = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    ea.Reload()
    rows = csv_rows(tmp_path / "tb" / "metrics.csv")
    for tag, col in (("val/ERS", "val_ERS"), ("train/loss", "train_loss"), ("lr", "lr")):
        events = ea.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([float(r[col]) for r in rows], rel=1e-4)
    train(tiny_config("demo", ["optim.epochs=1", "run.bn_recalibrate=0", "run.tensorboard=off"]), synth, tmp_path / "off")
    assert not (tmp_path / "off" / "tensorboard").exists()
