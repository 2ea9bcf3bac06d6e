"""Faults, round two (issue 23): float flags that are not numbers, an instance in two splits, an
ablation into a user's folder, a lock file that is a folder. Each through ``beenet.cli.main`` (or
the command's own parser) on real files."""

from __future__ import annotations

import csv
import importlib
import json
import shutil
from pathlib import Path

import pytest

from bold_fixture import write_bold_fixture
from beenet.cli import COMMANDS, main
from beenet.errors import ConfigError

PREDICT = ["talk.mp4", "--checkpoint", "best.pt", "--out", "preds"]


@pytest.mark.parametrize("flag,value", [
    ("--window", "inf"), ("--window", "nan"), ("--window", "0"), ("--stride", "nan"), ("--stride", "-1"),
    ("--min-presence", "nan"), ("--min-presence", "1.5"), ("--min-confidence", "nan"), ("--relink", "nan"),
    ("--relink", "-inf"), ("--min-track", "inf"), ("--max-gap", "nan"), ("--window", "four"),
])
def test_predict_float_flags_are_usage_errors_at_parse_time(flag, value, capsys):
    """Refused by the parser (exit 2, the flag named) before any checkpoint, model or pose loads:
    the checkpoint named here does not exist, and nothing says so."""
    with pytest.raises(SystemExit) as exit_:
        main(["predict", *PREDICT, f"{flag}={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: expected" in err and repr(value) in err, err
    assert "best.pt" not in err  # refused before the checkpoint was looked at


def test_every_float_flag_of_every_command_refuses_nan():
    """No float flag of any command takes ``nan``: each parses its value with the finite-float type."""
    checked = 0
    for name, (module_name, _) in COMMANDS.items():
        parser = importlib.import_module(module_name).build_parser(f"beenet {name}")
        stack = [parser]
        while stack:
            p = stack.pop()
            for action in p._actions:
                if action.choices and isinstance(action.choices, dict):  # subcommands
                    stack += list(action.choices.values())
                if action.type is float:
                    raise AssertionError(f"beenet {name} {action.option_strings}: type=float takes nan; "
                                         "use beenet.cli.argtypes")
                if getattr(action.type, "__module__", "") == "beenet.cli.argtypes":
                    with pytest.raises(Exception):
                        action.type("nan")
                    checked += 1
    assert checked >= 8  # predict's seven, export's --atol


def test_export_atol_nan_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "onnx", "--checkpoint", "best.pt", "--out", "m.onnx", "--check", "--atol", "nan"])
    assert exit_.value.code == 2 and "argument --atol: expected a finite number, got 'nan'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bold_source(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public", num_frames=6, width=32, height=32,
                              clips_per_split={"train": 2, "val": 2, "test": 1})


def test_a_val_row_copied_into_train_is_a_problem_naming_both_rows(bold_source, tmp_path, capsys):
    root = tmp_path / "BOLD_public"
    shutil.copytree(bold_source.root, root)
    train_csv, val_csv = root / "annotations" / "train.csv", root / "annotations" / "val.csv"
    val_row = next(csv.reader(open(val_csv)))
    n_train = sum(1 for _ in open(train_csv))
    with open(train_csv, "a", newline="") as fh:
        csv.writer(fh).writerow(val_row)
    report_file = tmp_path / "report.json"
    assert main(["data", "check", str(root), "--json", str(report_file)]) == 0
    out = capsys.readouterr().out
    assert "Problems: none found" not in out
    video, person = val_row[0], int(val_row[1])
    line = (f"{video} person {person}: annotations/train.csv, line {n_train + 1} and "
            "annotations/val.csv, line 1")
    assert "instances in two splits" in out and line in out, out
    assert "1 instance is in two splits" in out  # the verdict says it too
    report = json.loads(report_file.read_text())
    assert report["cross_split"] == [{"video": video, "person_id": person, "rows": [
        {"split": "train", "file": "annotations/train.csv", "line": n_train + 1},
        {"split": "val", "file": "annotations/val.csv", "line": 1}]}]


def test_a_clean_directory_has_no_instance_in_two_splits(bold_source, capsys):
    assert main(["data", "check", str(bold_source.root)]) == 0
    assert "Problems: none found" in capsys.readouterr().out


def test_ablate_refuses_a_users_folder_and_loses_nothing(bold_source, tmp_path, capsys):
    """A folder with the user's own summary.md and results.csv: refused before anything is written
    (no study.json, no runs/), the user's files byte for byte as they were."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.md").write_text("# my notes\n")
    (out / "results.csv").write_text("a,b\n1,2\n")
    rc = main(["ablate", "--data", str(bold_source.root), "--out", str(out), "--seeds", "1", "--epochs", "1",
               "--only", "emotion", "--set", "run.device=cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{out} is not empty and is not an earlier ablation (no study.json" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "summary.md"]
    assert (out / "summary.md").read_text() == "# my notes\n" and (out / "results.csv").read_text() == "a,b\n1,2\n"


def test_an_ablations_own_folder_resumes_and_a_foreign_file_is_refused(tmp_path):
    from beenet.ablation.outdir import check_ablation_out

    out = tmp_path / "abl"
    check_ablation_out(out)  # missing: a new study
    out.mkdir()
    check_ablation_out(out)  # empty
    (out / "study.json").write_text("{}")
    (out / "runs" / "emotion" / "seed42").mkdir(parents=True)
    for name in ("results.csv", "summary.csv", "summary.md", ".summary.md.x1.tmp"):
        (out / name).write_text("")
    check_ablation_out(out)  # its own folder: resumed
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds an ablation and files it did not write \(notes\.txt\)"):
        check_ablation_out(out)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        check_ablation_out(tmp_path / "file")


def test_a_lock_that_is_a_folder_is_one_line(bold_source, tmp_path, capsys):
    run = tmp_path / "run"
    (run / ".beenet.lock").mkdir(parents=True)
    (run / ".beenet.lock" / "kept.txt").write_text("the user's")
    rc = main(["train", "--data", str(bold_source.root), "--out", str(run), "--config", "demo",
               "--set", "run.device=cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / '.beenet.lock'}: is a folder, not beenet's lock file" in err, err
    assert (run / ".beenet.lock" / "kept.txt").read_text() == "the user's"
    assert sorted(p.name for p in run.iterdir()) == [".beenet.lock"]
