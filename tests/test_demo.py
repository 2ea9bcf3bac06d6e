"""`beenet demo --quick`: synthesis, check, training, evaluation and the report, end to end."""

from __future__ import annotations

import json

import pytest

from beenet.cli import main
from train_helpers import restore_root_logging


_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    rc = main(["demo", "--quick", "--out", str(out)])
    return rc, out


@pytest.mark.slow
def test_quick_demo_end_to_end(demo):
    rc, out = demo
    assert rc == 0
    for rel in ("data/annotations/train.csv", "data/synthetic_context.json", "data_check.json", "run/best.pt",
                "run/metrics.csv", "eval-val/metrics.json", "eval-val/category_bars.png", "eval-val/pr_curves.png",
                "eval-test/metrics.json", "eval-test/predictions_test.csv", "report.md", "demo_config.yaml"):
        assert (out / rel).is_file(), rel
    assert json.loads((out / "data_check.json").read_text())["usable"] is True
    val = json.loads((out / "eval-val" / "metrics.json").read_text())
    assert val["protocol"] == "paper" and val["split"] == "val"
    report = (out / "report.md").read_text()
    assert "| split | n | mAP | mRA | mR2 | ERS |" in report
    assert "| chance (val) |" in report and "generator oracle: body + context" in report
    assert "Quick smoke run" in report
    assert "(eval-val/category_bars.png)" in report
    # The report's val row is the evaluated checkpoint's numbers.
    assert f"| val | {val['n']} | {val['mAP']:.4f} |" in report
    # It says plainly that the checkpoint learned from stick figures, and the checkpoint records it.
    assert "learned from synthetic stick figures" in report and "mean nothing" in report
    assert "beenet predict VIDEO --checkpoint run/best.pt" in report
    from beenet.artifacts.checkpoint import load_checkpoint, trained_on

    assert trained_on(load_checkpoint(out / "run" / "best.pt"))["kind"] == "synthetic"


@pytest.mark.slow
def test_demo_output_dir_rules(demo, tmp_path, capsys):
    rc, out = demo
    # An earlier demo is not replaced without --overwrite ...
    assert main(["demo", "--quick", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    # ... and a directory that is not a demo is never touched.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    assert main(["demo", "--quick", "--out", str(other), "--overwrite"]) == 1
    assert "not an earlier demo" in capsys.readouterr().err
    assert (other / "thesis.tex").read_text() == "x"


def test_demo_help_reads_like_a_man_page(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--quick" in text and "report.md" in text
