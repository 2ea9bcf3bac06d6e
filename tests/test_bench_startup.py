"""benchmarks/bench_startup.py run for real: one ``beenet predict`` of a real clip, stamped phase by
phase up to the first frame pass 1 takes (so a renamed method or module it stamps is caught here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _predict_helpers import make_checkpoint
from footage import footage

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("python", "cli imports", "torch+model code", "checkpoint", "pose backend", "first frame")


def test_the_bench_stamps_every_phase_of_a_real_start(tmp_path, blazepose_models) -> None:
    ckpt = make_checkpoint(tmp_path / "tiny.pt")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_startup.py"), "--tree", f"now={ROOT}",
                          "--repeat", "1", "--warmup", "0", "--video", str(footage("carphone.mp4")),
                          "--checkpoint", str(ckpt)], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = [line for line in out.stdout.splitlines() if "run 1:" in line]
    total = float(re.search(r"first frame ([\d.]+) s,", run)[1])
    phases = {name: float(value) for name, value in re.findall(r"(?:: |, )([a-z+ ]+) ([\d.]+)(?=,|$)", run)}
    assert list(phases) == list(PHASES), run
    # the phases add up to the start-up, to the rounding of the 2-decimal figures it prints
    assert abs(sum(phases.values()) - total) <= 0.005 * (len(PHASES) + 1) + 1e-9, run
    assert all(v >= 0 for v in phases.values()) and phases["torch+model code"] > 0.1  # torch is imported there
