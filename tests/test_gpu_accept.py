"""``benchmarks/gpu_accept.sh --device cpu``: every step of the GPU acceptance script, on the CPU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("env", "synth", "prepare", "epoch", "sweep", "ddp", "resume", "compile")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the acceptance script is a bash script")
def test_cpu_mode_passes_every_step_and_ends_with_its_summary(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_accept.sh"), "--device", "cpu", "--work",
                           str(tmp_path / "work")], capture_output=True, text=True, timeout=1800, env=env)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    summary = out[out.index("=== beenet gpu_accept summary: device cpu (gloo)"):]
    for step in STEPS:
        assert re.search(rf"^{step} +(PASS|WARN) ", summary, re.M), f"{step} missing or failed:\n{summary}"
    assert re.search(r"^ddp +\S+ .*backend gloo, world size 1, all_reduce ok", summary, re.M), summary
    assert re.search(r"^resume +\S+ .*identical over 2 epochs", summary, re.M), summary  # bit-exact on CPU
    assert re.search(r"^compile .*graph breaks: \d+; recompiles: \d+", summary, re.M), summary
    assert re.search(r"^ +2 +off +on +\d+\.\d", summary, re.M), summary  # a sweep row: batch 2, channels_last
    assert summary.rstrip().splitlines()[-1].startswith("RESULT: PASS"), summary
    assert (tmp_path / "work" / "logs" / "compile.log").is_file()  # --work keeps the logs
