"""Ablation studies: variant definitions, results/summary tables, resuming, stress settings, CLI."""

from __future__ import annotations


import pytest

from beenet.cli import main
from beenet.errors import ConfigError
from beenet import ablation as A
from beenet.run_config import config_diff, load_config
from train_helpers import TINY, csv_rows, restore_root_logging, write_tiny_synth


_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_tiny_synth(tmp_path_factory.mktemp("abl") / "synth")



def test_paper_study_variants():
    st = A.make_study("paper", load_config("demo"))
    names = [v.name for v in st.variants]
    assert names == ["emotion", "place", "object", "both-concat", "both-camode", "both-camode-scaffold", "both-beenet"]
    cfgs = {v.name: A.variant_config(st, v, seed=1) for v in st.variants}
    e = cfgs["emotion"].model
    assert e.fusion == "none" and not e.place_stream and not e.object_stream
    assert cfgs["place"].model.place_stream and not cfgs["place"].model.object_stream
    assert {cfgs[n].model.fusion for n in ("both-concat", "both-camode", "both-camode-scaffold", "both-beenet")} == {
        "concat", "camode", "camode-scaffold", "beenet"}
    assert all(c.run.seed == 1 for c in cfgs.values())


def test_distill_study_is_the_scale_of_the_distillation():
    st = A.make_study("distill", load_config("demo"))
    cfgs = {v.name: A.variant_config(st, v, seed=1) for v in st.variants}
    assert st.baseline == "nats" and set(cfgs) == {"off", "nats", "log-classes", "classes", "classes-x10"}
    assert (cfgs["nats"].loss.distill_norm, cfgs["nats"].loss.distill_weight) == ("none", 1.0)
    assert cfgs["off"].loss.distill_weight == 0.0 and cfgs["classes-x10"].loss.distill_weight == 10.0
    base = load_config("demo").to_dict()
    for c in cfgs.values():  # nothing else changes
        d = c.to_dict()
        assert {k: v for k, v in d["model"].items()} == base["model"]


def test_pooling_study_changes_one_site_at_a_time():
    base = load_config("video")
    st = A.make_study("pooling", base)
    names = [v.name for v in st.variants]
    kinds = A.pool_kinds()
    assert names[0] == "baseline"
    assert {f"a-{k}" for k in kinds if k != base.model.temporal_pool} <= set(names)
    assert {f"c-{k}" for k in ("mean", "gem", "attention")} <= set(names)
    assert {f"b-{k}" for k in kinds if k != base.model.skeleton_pool} <= set(names)
    for v in st.variants[1:]:
        diff = config_diff(base, A.variant_config(st, v, seed=base.run.seed))
        assert len(diff) == 1, (v.name, diff)
    assert set(st.variants[0].stresses) == {"none", "distractors-25", "distractors-50", "drop-places", "drop-objects"}
    # Without the skeleton stream, site b is not studied.
    no_skel = A.make_study("pooling", load_config("video", ["model.skeleton=false"]))
    assert not any(v.name.startswith("b-") for v in no_skel.variants)


def test_streams_study_and_unknown_names():
    st = A.make_study("streams", load_config("video"))
    cfgs = [A.variant_config(st, v, 0) for v in st.variants]
    assert [(c.model.body_crop != "none", c.model.skeleton) for c in cfgs] == [
        (False, False), (True, False), (False, True), (True, True)]
    with pytest.raises(ConfigError, match="unknown study"):
        A.make_study("mine", load_config("demo"))


def test_stress_names_round_trip():
    for name in ("none", "distractors-25", "distractors-50", "distractors-0", "drop-places", "drop-objects"):
        assert str(A.Stress.parse(name)) == name
        assert A.Stress.parse(str(A.Stress.parse(name))) == A.Stress.parse(name)
    assert A.Stress.parse("distractors-25") == A.Stress("distractors", percent=25)
    assert A.Stress.parse("distractors-25").fraction == 0.25
    assert A.Stress.parse("drop-objects") == A.Stress("drop", part="objects")
    assert A.Stress() == A.Stress.parse("none")
    # every stress a study asks for is one the parser reads back
    for v in A.make_study("pooling", load_config("video")).variants:
        assert [str(A.Stress.parse(s)) for s in v.stresses] == list(v.stresses)


@pytest.mark.parametrize("bad", ["", "nothing", "none-1", "distractors", "distractors-x", "distractors-150",
                                 "drop", "drop-", "drop-people", "Drop-places"])
def test_unknown_stress_lists_the_valid_ones(bad):
    with pytest.raises(ConfigError) as err:
        A.Stress.parse(bad)
    text = str(err.value)
    assert "none" in text and "distractors-<percent>" in text and "drop-places" in text and "drop-objects" in text
    with pytest.raises(ConfigError, match="drop-places"):
        A.Stress("drop", part="faces")


PAPER_KW = dict(config="demo", study="paper", seeds=1, epochs=1, overrides=TINY, only=["emotion", "both-beenet"])
#: The paper study in the paper preset's forms: linear Eq. 16, MSE on raw VAD, no precise BN.
PAPER_FORM = ["model.fusion_form=linear", "loss.kind=mse", "run.bn_recalibrate=0"]


@pytest.fixture(scope="module")
def paper_run(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "abl"
    return out, A.run_ablation(synth, out, **PAPER_KW)


@pytest.mark.slow
def test_paper_study_tables(paper_run):
    out, summary = paper_run
    rows = csv_rows(out / "results.csv")
    assert [(r["variant"], r["seed"]) for r in rows] == [("emotion", "42"), ("both-beenet", "42")]
    for r in rows:
        assert r["stress"] == "none" and r["ERS"] != "" and float(r["latency_ms"]) > 0
        assert (out / "runs" / r["variant"] / "seed42" / "best.pt").is_file()
    assert rows[0]["added_params"] == "0" and int(rows[1]["added_params"]) != 0  # the fusion adds parameters
    assert [s["variant"] for s in summary] == ["emotion", "both-beenet"]
    md = (out / "summary.md").read_text()
    assert "| emotion (emotion stream only) | none |" in md and "±" in md
    assert "selected on val, scored on test" in md and "1 split seed(s)" in md
    assert len(csv_rows(out / "summary.csv")) == 2
    assert {r["split"] for r in rows} == {"test"} and {r["split_seed"] for r in rows} == {"42"}
    # demo recalibrates while training: no second BatchNorm number; odds scores are never negative.
    assert {r["ERS_bn_recal"] for r in rows} == {""} and {float(r["neg_share"]) for r in rows} == {0.0}


@pytest.mark.slow
def test_split_seeds_scaffold_gate_and_both_batchnorm_numbers(synth, tmp_path):
    """--split-seeds trains on another split too; a run without precise BN reports the scores with
    recalibrated statistics beside the headline; the linear form reports its negative scores."""
    out = tmp_path / "abl"
    A.run_ablation(synth, out, config="demo", study="paper", seeds=1, epochs=1, split_seeds=2,
                   overrides=[*TINY, *PAPER_FORM], only=["both-camode-scaffold"])
    rows = csv_rows(out / "results.csv")
    assert [(r["variant"], r["split_seed"], r["split"]) for r in rows] == [
        ("both-camode-scaffold", "42", "test"), ("both-camode-scaffold", "43", "test")]
    assert (out / "runs" / "both-camode-scaffold" / "seed42" / "best.pt").is_file()
    assert (out / "runs" / "both-camode-scaffold" / "split43-seed42" / "best.pt").is_file()
    from beenet.data.bold import BoLD

    bold = BoLD(synth)
    test42 = {i.key for i in bold.instances("test", protocol="paper", seed=42)}
    test43 = {i.key for i in bold.instances("test", protocol="paper", seed=43)}
    assert test42 != test43
    for r in rows:
        assert r["ERS_bn_recal"] != "" and r["mR2_bn_recal"] != "" and 0.0 <= float(r["neg_share"]) <= 1.0
    md = (out / "summary.md").read_text()
    assert "1 seed(s) x 2 split seed(s)" in md and "recalibrated BN" in md and "negative scores" in md


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_refuses_another_study(synth, paper_run, monkeypatch):
    out, summary = paper_run
    import beenet.training.loop as loop

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(loop, "train", no_training)
    again = A.run_ablation(synth, out, **PAPER_KW)
    assert [s["ERS_mean"] for s in again] == [s["ERS_mean"] for s in summary]
    # A run of an older study (scored on val, no "split" in its result.json) is re-scored on test,
    # not trained again.
    import json

    path = out / "runs" / "emotion" / "seed42" / "result.json"
    old = json.loads(path.read_text())
    path.write_text(json.dumps({**{k: v for k, v in old.items() if k != "split"}, "scores": {"none": {}}}))
    A.run_ablation(synth, out, **PAPER_KW)
    rescored = json.loads(path.read_text())
    assert rescored["split"] == "test" and rescored["scores"]["none"]["ERS"] == old["scores"]["none"]["ERS"]
    with pytest.raises(ConfigError, match="another ablation"):
        A.run_ablation(synth, out, **{**PAPER_KW, "study": "streams", "only": None})


def test_summary_mean_and_std_over_seeds():
    rows = [{"variant": "v", "description": "d", "stress": "none", "ERS": e, "mAP": 0.5, "mRA": 0.6, "mR2": None,
             "params": 10, "added_params": 2, "latency_ms": 1.0, "chance": {"ERS": 0.1}} for e in (0.2, 0.4)]
    (s,) = A.summarise(rows)
    assert s["seeds"] == 2 and s["ERS_mean"] == pytest.approx(0.3) and s["ERS_std"] == pytest.approx(0.1414, abs=1e-4)
    assert s["mAP_std"] == 0.0 and s["mR2_mean"] is None
    assert "0.3000 ± 0.1414" in A.summary_markdown([s], "paper", load_config("demo"), seeds=2)


@pytest.mark.slow
def test_pooling_stress_rows(synth, tmp_path):
    out = tmp_path / "pool"
    # m = 0: on the tiny data (a few clips per context) the default pseudo-count pulls every prior to
    # the marginal after one epoch, and the dropped context would then change no ranking.
    A.run_ablation(synth, out, config="video", study="pooling", seeds=1, epochs=1,
                   overrides=[*TINY, "model.prior_pseudocount=0"], only=["baseline"])
    rows = csv_rows(out / "results.csv")
    assert [r["stress"] for r in rows] == ["none", "distractors-25", "distractors-50", "drop-places", "drop-objects"]
    assert all(r["ERS"] != "" for r in rows)
    # Dropping a context source changes the scores of a model that fuses it.
    by = {r["stress"]: float(r["mAP"]) for r in rows}
    assert by["drop-places"] != by["none"] or by["drop-objects"] != by["none"]


@pytest.mark.slow
def test_cli_ablate(synth, paper_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    assert "examples:" in capsys.readouterr().out
    out, _ = paper_run
    sets = [x for t in TINY for x in ("--set", t)]
    # Same study in the same directory: everything is done, the CLI prints the table.
    rc = main(["ablate", "--data", str(synth), "--out", str(out), "--config", "demo", "--seeds", "1",
               "--epochs", "1", "--only", "emotion,both-beenet", *sets])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| variant | stress | ERS | mAP | mRA | mR2 | added params | latency ms/sample |" in printed
    assert "both-beenet" in printed and "summary.md" in printed
    assert main(["ablate", "--data", str(synth), "--out", str(tmp_path / "b"), "--only", "nope", *sets]) == 1
    assert "unknown variant(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_a_shortened_run_without_precise_bn_prints_both_batchnorm_numbers(synth, tmp_path, capsys):
    """beenet train --epochs with run.bn_recalibrate=0 (the paper preset's): the headline keeps the
    stored statistics; the recalibrated scores are printed beside it, and differ."""
    from beenet.ablation.scoring import recalibrated_checkpoint_scores
    from beenet.metrics import format_headline

    sets = [x for t in [*TINY, *PAPER_FORM] for x in ("--set", t)]
    rc = main(["train", "--data", str(synth), "--out", str(tmp_path / "run"), "--config", "demo",
               "--epochs", "1", *sets])
    assert rc == 0
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if "BatchNorm recalibrated over" in ln)
    recal = recalibrated_checkpoint_scores(tmp_path / "run" / "best.pt", synth, "val", "cpu")
    assert format_headline(recal) in line and "headline: the stored statistics" in printed
    best = next(ln for ln in printed.splitlines() if ln.strip().startswith("best epoch 1:"))
    assert format_headline(recal) not in best
