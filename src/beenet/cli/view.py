"""``beenet view``: interactive pages for predict results and training runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Write interactive HTML pages that open in any browser, with no network:

  a 'beenet predict --out' folder  DIR/index.html (the videos, people counts, top emotions) and
                                   DIR/<stem>.html per video: the video with each person's box and
                                   skeleton, id and top-3 emotions; per person the 26-category heat
                                   map and V/A/D curves over time (click to seek); the table rows
                                   of the current frame. Keys: space, arrows (frame), 1-9 / 0.
  a training run or demo folder    RUN/report.html: loss and val mAP/mRA/mR2/ERS curves with
                                   chance levels, per-category bars, PR curves, the config.

Pages work opened from disk. --serve also starts a server on 127.0.0.1 (seeking in long videos
is smoother over HTTP); it answers only requests for 127.0.0.1 / localhost. A video browsers
cannot play (not H.264/VP9/AV1 in mp4/webm) gets a playable copy <stem>_proxy.mp4 beside the
results, written once.

Everything read or served resolves (links followed) inside DIR; the input videos also inside a
folder named with --videos (predict --html names its inputs). A file outside, or one that is not
what predict writes (a bad summary, table, meta.json, per-frame table, keypoints file), is refused
in one line naming it; the other videos are still viewed, and the exit status is 1.
"""

EPILOG = """\
examples:
  beenet view results                   # then open results/index.html
  beenet view results --serve --port 8000 --videos clips   # the input videos lie in clips/
  beenet view runs/demo                 # a run: runs/demo/report.html
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="DIR", help="a 'beenet predict --out' folder, or a training run / demo / eval folder")
    p.add_argument("--serve", action="store_true", help="serve the pages on http://127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port for --serve (default 8000; 0 = any free port)")
    p.add_argument("--no-open", action="store_true", help="with --serve, do not open a browser")
    p.add_argument("--videos", action="append", default=[], metavar="FOLDER",
                   help="a folder (or file) of input videos outside DIR the pages may play (repeatable); "
                        "videos elsewhere are not shown")
    p.add_argument("--no-proxy", action="store_true", help="never transcode a video the browser may not play")
    return p


def is_run_folder(folder: Path) -> bool:
    from beenet.view.run import find_run_parts  # lazy: keeps 'beenet view --help' fast (loads torch)

    parts = find_run_parts(folder)
    return bool(parts["metrics_csv"] or parts["evals"]) and not (folder / "predict_summary.json").exists()


def run(args: argparse.Namespace) -> int:
    from beenet.view import serve, write_run_view  # lazy: keeps 'beenet view --help' fast (loads torch)
    from beenet.view.results import build_results_view  # lazy: keeps 'beenet view --help' fast (loads torch)

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"beenet view: error: {folder}: no such folder", file=sys.stderr)
        return 2
    problems: list[str] = []
    if is_run_folder(folder):
        page = write_run_view(folder)
        media: dict[str, Path] = {}
    else:
        view = build_results_view(folder, proxy=not args.no_proxy, videos=args.videos)
        page, media, problems = view.index, view.media, view.problems
        for line in view.notes:
            print(f"beenet view: note: {line}", file=sys.stderr)
        for line in problems:
            print(f"beenet view: error: {line}", file=sys.stderr)
    print(f"wrote {page}" + (f" ({len(problems)} refused: see above)" if problems else ""))
    if args.serve:
        try:
            serve(folder, args.port, media, open_page=None if args.no_open else page.name)
        except OSError as exc:
            print(f"beenet view: error: cannot serve on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                  "try another --port", file=sys.stderr)
            return 2
    return 1 if problems else 0
