"""``beenet predict`` run as a command ends its process as soon as it is done (``console_main``,
``QUICK_EXIT``): its outputs, its last lines and its exit status are all there, and the
interpreter's shutdown (torch's teardown: 0.7-1.1 s) is skipped; ``BEENET_FULL_EXIT=1`` and the
other commands keep the full shutdown, and ``main()`` called from Python returns as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _predict_helpers import make_checkpoint
from footage import footage

#: A child that registers an interpreter-shutdown hook, then runs the ``beenet`` command.
PROBE = ("import atexit, sys\n"
         "atexit.register(lambda: print('SHUTDOWN', flush=True))\n"
         "from beenet.cli import console_main\n"
         "sys.argv = ['beenet', *sys.argv[1:]]\n"
         "console_main()\n")


def _beenet(args: list[str], **env: str) -> subprocess.CompletedProcess:
    src = str(Path(__file__).resolve().parents[1] / "src")
    full = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), **env}
    return subprocess.run([sys.executable, "-c", PROBE, *args], env=full, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt")


def test_predict_ends_at_once_with_its_outputs_and_last_lines(tmp_path, ckpt, blazepose_models):
    out = tmp_path / "out"
    done = _beenet(["predict", str(footage("carphone.mp4")), "--checkpoint", str(ckpt), "--out", str(out),
                    "--window", "1", "--stride", "1", "--device", "cpu"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 of 1 inputs done" in done.stdout and "SHUTDOWN" not in done.stdout
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["status"] == "done" and (out / "carphone.csv").stat().st_size > 0


@pytest.mark.parametrize("full", [False, True])
def test_the_exit_status_is_kept_and_the_full_shutdown_can_be_asked_for(tmp_path, full):
    env = {"BEENET_FULL_EXIT": "1"} if full else {}
    done = _beenet(["predict", str(footage("carphone.mp4")), "--checkpoint", str(tmp_path / "nope.pt"),
                    "--out", str(tmp_path / "out")], **env)
    assert done.returncode == 2 and "no such checkpoint" in done.stderr
    assert ("SHUTDOWN" in done.stdout) is full


def test_other_commands_and_main_from_python_shut_down_as_usual(capsys):
    done = _beenet(["--version"])
    assert done.returncode == 0 and "beenet " in done.stdout and "SHUTDOWN" in done.stdout
    from beenet.cli import main

    assert main(["--version"]) == 0 and "beenet " in capsys.readouterr().out  # returns: the caller goes on
