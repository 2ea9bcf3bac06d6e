"""``beenet data``: inspect a BoLD directory before training on it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from beenet.data.check import check_bold, format_report

DESCRIPTION = """\
Inspect a BoLD directory (the BOLD_public/ folder of the release, or the output of
'beenet synth') and say whether it can be trained and evaluated on.

'check' reads every row of annotations/train.csv, val.csv and test_meta.csv (headerless
CSVs: 37 columns for labelled rows, at least 4 for test rows), looks for each clip's video
(videos/003/<youtube_id>.mp4/<NNNN>.mp4) and joints file (joints/..., .npy), and checks that
each annotated person has rows in the joints file; it opens every video's header and loads every
joints file once. It prints, per split, the counts of instances, clips, usable instances (what
'beenet train' trains and validates on: the video opens, the joints file loads when present),
complete instances (video + joints + rows), missing and unreadable videos, missing joints files,
persons without joint rows and bad rows, then the first problems of each kind, and a verdict.
The directory is usable when train.csv and val.csv parse without a bad row and each has at
least one usable instance.
"""

EPILOG = """\
exit status:
  0  the directory is usable
  1  it is not (the report says why and what to do), or DIR is not a BoLD directory

examples:
  beenet data check ~/data/BOLD_public
  beenet data check ~/data/BOLD_public --deep --json bold-check.json
  beenet data check ~/data/BOLD_public --json - | jq .splits.val.instances
"""

CHECK_DESCRIPTION = """\
Check a BoLD directory: annotation rows, videos, joints files, persons without joint
rows; --deep also opens every video with PyAV (slower: about a second per hundred clips).
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    check = sub.add_parser(
        "check", help="check a BoLD directory and say whether it is usable",
        description=CHECK_DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("dir", metavar="DIR", type=Path, help="the BoLD directory (BOLD_public/)")
    check.add_argument("--json", metavar="FILE", help="also write the full report as JSON to FILE ('-': stdout, "
                       "and the text report goes to stderr)")
    check.add_argument("--deep", action="store_true", help="also open every video with PyAV and decode a frame")
    check.add_argument("--show", metavar="N", type=int, default=10,
                       help="problems listed per kind before '... and N more' (default: 10)")
    parser.set_defaults(_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.action != "check":
        args._parser.print_help(sys.stderr)
        return 2

    report = check_bold(args.dir, deep=args.deep)
    text = format_report(report, show=max(0, args.show))
    to_stdout = args.json == "-"
    print(text, file=sys.stderr if to_stdout else sys.stdout)
    if args.json:
        payload = json.dumps(report, indent=2)
        if to_stdout:
            print(payload)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(payload + "\n", encoding="utf-8")
    if report["usable"]:
        return 0
    print(f"beenet data check: {args.dir} is not usable (see the verdict above)", file=sys.stderr)
    return 1
