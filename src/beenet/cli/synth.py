"""``beenet synth``: write the embedded synthetic dataset in the exact BoLD layout."""

from __future__ import annotations

import argparse
import re

DESCRIPTION = """\
Write a synthetic dataset that a BoLD reader cannot tell from the real release: the same
headerless annotation CSVs (train.csv, val.csv with 37 columns; test_meta.csv with 4), the
same nested paths (videos/003/<id>.mp4/<NNNN>.mp4, where '<id>.mp4' is a directory, and
joints/003/<id>.mp4/<NNNN>.npy), the same joints quirks (absolute frame numbers, shuffled
rows, missed detections, low-confidence keypoints, un-annotated bystanders), several frame
rates and a clip-disjoint train/val/test split of about 70/10/20.

Each clip shows a scene (party, stadium, beach, home, office, hospital, funeral, alley) with
a few objects, and stick-figure people whose posture and motion express their emotions. A
body archetype alone is ambiguous (arms up at a party is joy, in a hospital fright): the
scene decides, so a model that sees the context beats one that sees the body only.
OUT/synthetic_context.json records each clip's scene (Places365 class) and objects (COCO
classes): it is the 'sidecar' context source. OUT/README.txt says it is synthetic, with the
generator version and seed. The rules are in docs/synthetic-data.md.

The same --seed, --clips, --size and --frames give byte-identical CSVs, joints and sidecar.
The dataset is built in a hidden temporary directory next to OUT and moved into place only
when complete, so an interrupted run leaves nothing that looks finished (the next run removes
the hidden folder a killed run left). About 15 s for 200
clips on 2 cores at the default size.
"""

EPILOG = """\
exit status:
  0  written
  1  OUT is not empty and --overwrite was not given, or OUT is not an earlier synth output,
     or it holds files synth did not write (never deleted: move them out first)

examples:
  beenet synth synth-bold
      200 clips, seed 0, 192x144: the demo's dataset.
  beenet synth /tmp/tiny --clips 20 --size 64x48 --seed 3
      a tiny set for a quick test.
  beenet synth synth-bold --clips 1000 --overwrite
      replace an earlier synthetic set with a larger one.
  beenet data check synth-bold
      read it back with the BoLD reader.
"""


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 192x144, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w % 2 or h % 2 or w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"width and height must be even and at least 32, got {w}x{h}")
    return w, h


def _frames(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[-:,]\s*(\d+)\s*", text)
    if not m or not 8 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"expected MIN-MAX frames with 8 <= MIN <= MAX, like 40-90, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", help="directory to write (created; must be empty unless --overwrite)")
    p.add_argument("--clips", type=_positive, default=200, metavar="N", help="number of clips (default 200)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--size", type=_size, default=(192, 144), metavar="WxH",
                   help="frame size in pixels, even numbers (default 192x144)")
    p.add_argument("--frames", type=_frames, default=(40, 90), metavar="MIN-MAX",
                   help="clip length range in frames (default 40-90)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it holds an earlier 'beenet synth' output and nothing else")
    p.add_argument("--workers", type=_positive, default=None, metavar="K",
                   help="rendering processes (default: up to 2); the output does not depend on it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from beenet.data.synth import (  # lazy: keeps 'beenet synth --help' fast (loads torch)
        SynthConfig,
        format_report,
        generate,
        oracle_report,
    )

    (w, h), (lo, hi) = args.size, args.frames
    cfg = SynthConfig(num_clips=args.clips, seed=args.seed, width=w, height=h, min_frames=lo, max_frames=hi)
    result = generate(args.out, cfg, overwrite=args.overwrite, workers=args.workers,
                      show_progress=False if args.no_progress else None)
    n = result.instances
    print(f"wrote {cfg.num_clips} synthetic clips ({w}x{h}, seed {cfg.seed}) to {result.root} "
          f"in {result.seconds:.1f}s")
    print(f"instances: train {n['train']}, val {n['val']}, test {n['test']} (official split, clip-disjoint)")
    print("how much the context matters (generator's own upper bounds, all instances):")
    for line in format_report(oracle_report(result.plan)).splitlines():
        print(f"  {line}")
    return 0
