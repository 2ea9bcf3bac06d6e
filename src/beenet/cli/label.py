"""``beenet label``: label the people of your own videos in the browser (rows for 'beenet import')."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from beenet.errors import BeenetError

DESCRIPTION = """\
Label the people in your own videos in a browser page, for 'beenet import'.

Each video is run once through pass 1 of 'beenet predict' (people found and tracked, cached
under $BEENET_CACHE/tracks: the same pass, settings and cache 'beenet import' uses, so the
person ids on the page are the ones import resolves). The page (PAGE/index.html, no network)
plays each video with the tracked people's boxes and ids; pick a person (click a box, or n / p),
mark a span ([ and ] at the current frame), tick any of BoLD's 26 categories and set valence,
arousal and dominance on 1-10 sliders. Every change is saved at once: the page sends the row to
the local server, which rewrites OUT atomically; a reload reads the rows back. Several
annotators may label the same span (the Annotator field; one row each).

OUT holds one row per (video, person, span, annotator), with a header:
  video,person_id,start_frame,end_frame,annotator,<26 categories 0/1>,valence,arousal,dominance
An existing OUT is read and kept (every line of it; rows are added or changed one at a time); one
that 'beenet import' could not read is refused, naming the line.

Without --serve the pass 1 runs and the page is written (e.g. on a bigger machine); run again with
--serve to label (the cache makes that quick). Keys: space play/pause, arrows a frame, n / p next /
previous person, [ ] span start / end, enter save and start a new span, s / S next / previous
saved span.
"""

EPILOG = """\
examples:
  beenet label clips/ --out labels.csv --serve --annotator ana
  beenet label a.mp4 b.mp4 --out labels.csv --serve --port 8001
  beenet import clips/ --labels labels.csv --out my-dataset   # then (docs/own-data.md)
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEOS_OR_DATASET",
                   help="video files or folders of videos (a BoLD-layout dataset folder: its videos)")
    p.add_argument("--out", required=True, metavar="CSV", help="the labels file (created, or read and kept)")
    p.add_argument("--page", metavar="DIR", help="where the page is written (default: OUT's name + '_page', beside it)")
    p.add_argument("--serve", action="store_true", help="serve the page on http://127.0.0.1 until Ctrl-C (to label)")
    p.add_argument("--port", type=int, default=8000, metavar="N", help="port for --serve (default 8000; 0 = any free port)")
    p.add_argument("--no-open", action="store_true", help="with --serve, do not open a browser")
    p.add_argument("--annotator", default="", metavar="NAME", help="the name the page fills in as annotator")
    # beenet.inference.pose loads torch: its choices and option parser are used in run only.
    p.add_argument("--pose", default="auto", metavar="BACKEND",
                   help="pose backend, as 'beenet import --pose' (default auto); the person ids depend on it")
    p.add_argument("--pose-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the pose backend, repeatable (as 'beenet import')")
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="where the pose backend runs (default cpu)")
    p.add_argument("--no-proxy", action="store_true", help="never transcode a video the browser may not play")
    return p


def page_folder(out: Path, page: str | None) -> Path:
    return Path(page) if page else out.with_name(out.stem + "_page")


def run(args: argparse.Namespace) -> int:
    from beenet.importing.build import find_videos  # lazy: loads torch; --help stays fast
    from beenet.importing.tracks import tracked_people  # lazy: same
    from beenet.inference.pose import make_pose_backend, parse_pose_option  # lazy: same
    from beenet.inference.tracking_config import TrackingConfig  # lazy: same
    from beenet.labelling.page import row_names, write_label_page  # lazy: same
    from beenet.labelling.server import serve_labels  # lazy: same
    from beenet.labelling.store import LabelStore  # lazy: same

    out = Path(args.out)
    LabelStore(out, {}).check()  # a malformed labels file is refused before any pose runs
    try:
        options = dict(parse_pose_option(text) for text in args.pose_option)
    except argparse.ArgumentTypeError as exc:
        raise BeenetError(f"--pose-option {exc}") from None
    names = row_names(find_videos(args.videos))
    if not names:
        raise BeenetError(f"no video in {' '.join(args.videos)}")
    try:
        backend = make_pose_backend(args.pose, device=args.device, **options)
    except ImportError as exc:
        raise BeenetError(f"the pose backend {args.pose!r} cannot be used: {exc}") from None
    videos = []
    try:
        backend.reset()
        for path, name in sorted(names.items(), key=lambda kv: kv[1]):
            try:
                tracked = tracked_people(path, backend, TrackingConfig())
            except BeenetError as exc:
                print(f"beenet label: skipped {path}: {exc}", file=sys.stderr)
                continue
            print(f"{name}: {len(tracked.person_ids)} people tracked in {tracked.num_frames} frames")
            videos.append((path, name, tracked))
    finally:
        backend.close()
    if not videos:
        raise BeenetError("no video could be read")
    page = write_label_page(page_folder(out, args.page), videos, out, args.annotator, proxy=not args.no_proxy)
    store = LabelStore(out, page.videos)
    print(f"wrote {page.index}; labels go to {out} ({store.check()} rows in it now)")
    if not args.serve:
        print(f"to label: beenet label {' '.join(args.videos)} --out {out} --serve")
        return 0
    try:
        serve_labels(page.index.parent, store, args.port, page.media, open_page=not args.no_open)
    except OSError as exc:
        print(f"beenet label: error: cannot serve on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
              "try another --port", file=sys.stderr)
        return 2
    return 0
