"""``beenet prepare``: decode every clip once into a cache that ``train`` and ``eval`` read."""

from __future__ import annotations

import argparse


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value

DESCRIPTION = """\
Decode each clip of a BoLD directory once and store what training and evaluation read: the
frames any sampler can ask for (every frame where an annotated person is present), resized to
the training resolution, the person crops (with data.body_crop) and the clip's context labels
from the configured experts, computed from the same decoded frames; with context.targets=frame
(the paper preset) also each expert's label of every stored frame (every context.label_every-th),
which training then needs: it distils each sample on the labels of the frame(s) it sees.

'beenet train' and 'beenet eval' then use the cache by themselves when its fingerprint (data
folder, protocol, split seed, sampling, image size, crops, context experts and targets, storage,
beenet version) matches their config, and say so in the log; otherwise they decode the videos.

The fingerprint names the data by its annotations' content and each clip by its files' sizes and
a digest of their first and last 64 KiB, never by path or mtime: a dataset copied elsewhere (cp,
another mount) is still served by its cache.

The cache goes to CACHE/<key>/ (default: run.prepared_dir, else 'prepared/' next to the context
cache, ~/.cache/beenet/prepared). A killed run continues where it stopped (each clip file is
written atomically; the temp files it left are removed) and says how many clips it reused. Each
reused clip file is checked (size and CRC-32 recorded when written); a damaged one is named and
made again. A clip that cannot be read is listed (file, reason) and skipped; training decodes it
on the fly if it can. A full disk stops the run at once (exit status 1); run again once there is
space. Only one prepare at a time writes a cache folder.
"""

EPILOG = """\
exit status:
  0  prepared (failed clips, if any, are listed)
  1  a usage or data error, another prepare writing the same cache, or a full disk

examples:
  beenet prepare --data BOLD_public --config paper --workers 16
      the paper preset's cache, in the default place (train/eval find it there).
  beenet prepare --data synth --config demo --out /scratch/prep --set data.image_size=112
      another folder: train with --set run.prepared_dir=/scratch/prep
  beenet prepare --data BOLD_public --config paper --storage raw
      lossless storage (about 6x the bytes of the default JPEG q95); see docs/training.md.
  beenet prepare --data BOLD_public --config paper --rebuild
      make this config's cache again from scratch (e.g. after 'damaged manifest.json').
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    from beenet.data.prepared import DEFAULT_STORAGE, STORAGES  # lazy: imports torch, not needed for --help

    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="BoLD directory (annotations/, videos/, joints/)")
    p.add_argument("--config", default="paper", metavar="NAME|FILE", help="preset or YAML file (default: paper)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, as for 'beenet train' (repeatable)")
    p.add_argument("--protocol", default=None, metavar="NAME", help="official or paper (sets run.protocol)")
    p.add_argument("--out", default=None, metavar="CACHE",
                   help="root folder of prepared caches (default: run.prepared_dir or ~/.cache/beenet/prepared)")
    p.add_argument("--workers", type=_count, default=1, metavar="N", help="worker processes (default: 1)")
    p.add_argument("--storage", choices=STORAGES, default=DEFAULT_STORAGE,
                   help=f"frame storage (default: {DEFAULT_STORAGE}, quality 95; raw is lossless)")
    p.add_argument("--limit", type=_count, default=None, metavar="N",
                   help="stop after N newly decoded clips (run again to continue)")
    p.add_argument("--rebuild", action="store_true",
                   help="delete this config's cache folder first and decode every clip again")
    return p


def run(args: argparse.Namespace) -> int:
    from beenet.data.prepared import prepare  # lazy: imports torch, needed only when the command runs
    from beenet.run_config import load_config, prepare_settings  # lazy: imports torch (through data/)

    overrides = list(args.overrides)
    if args.protocol is not None:
        overrides.append(f"run.protocol={args.protocol}")
    cfg = load_config(args.config, overrides)
    result = prepare(prepare_settings(cfg), args.data, args.out, workers=max(1, args.workers), storage=args.storage,
                     limit=args.limit, rebuild=args.rebuild)
    print(f"prepared cache {result.path}: {result.clips - len(result.failed)} of {result.clips} clips "
          f"({result.reused} reused, {result.prepared} decoded now), {len(result.failed)} failed, "
          f"{result.bytes / 1e6:.1f} MB, {result.seconds:.1f}s")
    for path, reason in result.failed:
        print(f"  failed: {path}: {reason}")
    if not result.complete:
        print("stopped before the end (--limit): run the same command again to continue")
    return 0
