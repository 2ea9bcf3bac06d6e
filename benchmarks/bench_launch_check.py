"""What a training launch costs before its first step, and what checking a prepared cache costs.

On a BoLD folder ``--data`` with a prepared cache under ``--prepared`` (made with the same
``--set`` overrides and ``--config``), times (median of ``--repeats``):

- the usable-clip check of every train and val clip as it was before the cache's record was
  trusted: each clip's video opened and its joints loaded (``beenet.data.usable.clip_statuses``);
- the launch check now (``beenet.training.setup._launch_check``): the cache looked up, the clips it
  serves taken from its record, only the others opened;
- the same after a copy of the dataset to another folder with fresh mtimes (each source's first
  and last 64 KiB read once to match it by content);
- the CRC-32 check ``beenet prepare`` runs over every clip file it reuses.

Example (300 synthetic clips, as in docs/training.md):
    beenet synth /tmp/s300 --clips 300
    beenet prepare --data /tmp/s300 --config demo --out /tmp/p300 --set data.image_size=64 \\
        --set context.pretrained=false
    python benchmarks/bench_launch_check.py --data /tmp/s300 --prepared /tmp/p300 \\
        --set data.image_size=64 --set context.pretrained=false
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beenet.data.bold import BoLD
from beenet.data.prepared import verify_clip_file
from beenet.data.usable import clip_statuses
from beenet.run_config import load_config
from beenet.training.setup import _launch_check


def _timed(f: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--prepared", required=True, type=Path, help="the cache root (prepare --out)")
    ap.add_argument("--config", default="demo")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = load_config(args.config, [*args.overrides, f"run.prepared_dir={args.prepared}", "run.device=cpu"])

    def instances(root: Path) -> tuple[BoLD, list[Any]]:
        bold = BoLD(root)
        return bold, [i for s in ("train", "val")
                      for i in bold.instances(s, protocol=cfg.run.protocol, seed=cfg.run.split_seed)]

    bold, inst = instances(args.data)
    clips = [i.clip for i in inst]
    t_open, _ = _timed(lambda: clip_statuses(bold, clips), args.repeats)
    t_now, (cache, _) = _timed(lambda: _launch_check(cfg, bold, inst), args.repeats)
    if cache is None:
        raise SystemExit(f"no prepared cache under {args.prepared} matches this config (see the log)")
    with tempfile.TemporaryDirectory() as tmp:
        moved = Path(tmp) / "copy"
        shutil.copytree(args.data, moved, copy_function=shutil.copyfile)  # fresh mtimes, as cp
        mbold, minst = instances(moved)
        t_moved, (mcache, _) = _timed(lambda: _launch_check(cfg, mbold, minst), args.repeats)
    files = sorted(cache.path.glob("clips/**/*.frames"))
    size = sum(f.stat().st_size for f in files)
    t_crc, reasons = _timed(lambda: [verify_clip_file(f) for f in files], args.repeats)
    print(f"{len(set(clips))} train+val clips")
    print(f"  every clip opened (the check before):  {t_open:.2f} s")
    print(f"  launch check from the cache's record:   {t_now:.2f} s ({len(cache.served)} clips served)")
    print(f"  same, on a copy with fresh mtimes:       {t_moved:.2f} s ({len(mcache.served) if mcache else 0} served)")
    print(f"CRC-32 check of {len(files)} clip files, {size / 1e6:.1f} MB: {t_crc:.2f} s "
          f"({size / 1e6 / max(t_crc, 1e-9):.0f} MB/s), {sum(r is not None for r in reasons)} damaged")


if __name__ == "__main__":
    main()
