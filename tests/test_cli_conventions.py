"""What users of a Python CLI expect: -v/-q after the subcommand, any torch device string,
progress bars in Jupyter, python -m beenet, shell completion."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

import pytest

from beenet import progress as progress_module
from beenet.cli import _verbosity, main
from beenet.cli.completion import bash_script
from beenet.device import resolve_device
from beenet.errors import ConfigError


@pytest.mark.parametrize("args, expected, level", [
    (["x.mp4", "-v"], ["x.mp4"], logging.DEBUG),
    (["-q", "x.mp4", "--out", "o"], ["x.mp4", "--out", "o"], logging.WARNING),
    (["x.mp4", "-v", "-q"], ["x.mp4"], logging.WARNING),
    (["x.mp4", "--", "-v"], ["x.mp4", "--", "-v"], logging.INFO),
])
def test_verbosity_flags_after_the_subcommand(args, expected, level) -> None:
    assert _verbosity(args, logging.INFO) == (expected, level)


def test_a_verbosity_flag_after_the_subcommand_reaches_no_parser(capsys, monkeypatch) -> None:
    monkeypatch.delenv("BEENET_NO_PROGRESS", raising=False)
    assert main(["completion", "bash", "-q"]) == 0
    assert "complete -o filenames" in capsys.readouterr().out
    # -q also silences the progress bars of the run.
    assert os.environ.get("BEENET_NO_PROGRESS") == "1"


def test_python_m_beenet_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "beenet", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("beenet ")


@pytest.mark.parametrize("name", ["cuda:1", "cuda", "mps", "no-such-device", "cuda:x"])
def test_devices_this_machine_lacks_or_torch_does_not_know_are_named(name, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    if name == "mps" and torch.backends.mps.is_available():  # pragma: no cover - Apple machines
        pytest.skip("this machine has MPS")
    with pytest.raises(ConfigError, match=re.escape(repr(name))):
        resolve_device(name)


def test_a_cuda_index_past_the_gpus_is_refused_naming_the_ones_there(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"'cuda:2'.*2 CUDA GPU\(s\): cuda:0, cuda:1"):
        resolve_device("cuda:2")
    assert str(resolve_device("cuda:1")) == "cuda:1"


def test_the_eval_and_predict_parsers_take_any_device_string() -> None:
    from beenet.cli.eval import build_parser
    from beenet.cli.predict import build_parser as predict_parser

    args = build_parser("beenet eval").parse_args(["--data", "d", "--split", "val", "--predictions", "p.csv",
                                                   "--device", "cuda:1"])
    assert args.device == "cuda:1"
    args = predict_parser("beenet predict").parse_args(["x.mp4", "--checkpoint", "c.pt", "--out", "o",
                                                        "--device", "mps"])
    assert args.device == "mps"


def test_progress_bars_show_in_a_jupyter_kernel_and_not_in_a_file(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("BEENET_NO_PROGRESS", raising=False)
    kernel_stream = type("OutStream", (), {"__module__": "ipykernel.iostream", "isatty": lambda self: False,
                                           "write": lambda self, s: len(s), "flush": lambda self: None})()
    monkeypatch.setattr(sys, "stderr", kernel_stream)
    assert progress_module.in_notebook() and progress_module.progress_enabled()
    with open(tmp_path / "log.txt", "w") as fh:
        monkeypatch.setattr(sys, "stderr", fh)
        assert not progress_module.progress_enabled()
    monkeypatch.setenv("BEENET_NO_PROGRESS", "1")
    monkeypatch.setattr(sys, "stderr", kernel_stream)
    assert not progress_module.progress_enabled()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
@pytest.mark.parametrize("words, cword, expected", [
    (["beenet", "pre"], 1, {"prepare", "predict"}),
    (["beenet", "export", "o"], 2, {"onnx"}),
    (["beenet", "predict", "x.mp4", "--pose", ""], 4, {"auto", "rcnn"}),
    (["beenet", "eval", "--dev"], 2, {"--device"}),
])
def test_the_bash_completion_completes_commands_options_and_choices(tmp_path, words, cword, expected) -> None:
    script = tmp_path / "beenet.bash"
    script.write_text(bash_script())
    probe = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}; "
             '_beenet; printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert expected <= set(out.stdout.split()), out.stdout




def test_help_of_each_command_loads_no_torch() -> None:
    """'beenet CMD --help' answers at once: building each parser imports no torch (prepare reads
    its storage names from the prepared-cache module, which needs torch: the one exception)."""
    probe = ("import importlib, sys\n"
             "from beenet.cli import COMMANDS\n"
             "heavy = []\n"
             "for name, (module, _) in COMMANDS.items():\n"
             "    if name == 'prepare':\n"
             "        continue\n"
             "    importlib.import_module(module).build_parser('beenet ' + name)\n"
             "    if 'torch' in sys.modules:\n"
             "        heavy.append(name)\n"
             "        break\n"
             "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
