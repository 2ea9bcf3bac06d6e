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
is smoother over HTTP). A video browsers cannot play (not H.264/VP9/AV1 in mp4/webm) gets a
playable copy <stem>_proxy.mp4 beside the results, written once.
"""

EPILOG = """\
examples:
  beenet view results                   # then open results/index.html
  beenet view results --serve --port 8000
  beenet view runs/demo                 # a run: runs/demo/report.html
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="DIR", help="a 'beenet predict --out' folder, or a training run / demo / eval folder")
    p.add_argument("--serve", action="store_true", help="serve the pages on http://127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port for --serve (default 8000; 0 = any free port)")
    p.add_argument("--no-open", action="store_true", help="with --serve, do not open a browser")
    p.add_argument("--no-proxy", action="store_true", help="never transcode a video the browser may not play")
    return p


def is_run_folder(folder: Path) -> bool:
    from beenet.view.run import find_run_parts  # lazy: keeps 'beenet view --help' fast (loads torch)

    parts = find_run_parts(folder)
    return bool(parts["metrics_csv"] or parts["evals"]) and not (folder / "predict_summary.json").exists()


def run(args: argparse.Namespace) -> int:
    from beenet.view import (  # lazy: keeps 'beenet view --help' fast (loads torch)
        serve,
        write_results_view,
        write_run_view,
    )
    from beenet.view.results import media_map  # lazy: keeps 'beenet view --help' fast (loads torch)

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"beenet view: error: {folder}: no such folder", file=sys.stderr)
        return 2
    if is_run_folder(folder):
        page = write_run_view(folder)
        media: dict[str, Path] = {}
    else:
        page = write_results_view(folder, proxy=not args.no_proxy)
        media = media_map(folder)
    print(f"wrote {page}")
    if args.serve:
        try:
            serve(folder, args.port, media, open_page=None if args.no_open else page.name)
        except OSError as exc:
            print(f"beenet view: error: cannot serve on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                  "try another --port", file=sys.stderr)
            return 2
    return 0
