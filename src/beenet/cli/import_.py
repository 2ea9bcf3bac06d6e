"""``beenet import``: labelled videos of your own as a dataset in BoLD's layout."""

from __future__ import annotations

import argparse
import sys

from beenet.cli.argtypes import fraction
from beenet.errors import BeenetError

DESCRIPTION = """\
Turn your own videos and a labels file into a dataset laid out exactly as BoLD is
(docs/bold-format.md), so that 'beenet data check', 'prepare', 'train', 'eval' and 'ablate'
work on it unchanged.

Each video is run once through pass 1 of 'beenet predict' (people found and tracked, with the
same pose backend and tracker, so the person ids are the ones 'beenet predict' and 'beenet
view' show; cached under $BEENET_CACHE/tracks). Each labelled span becomes a clip
(videos/000/<video>.mp4/<NNNN>.mp4) with its joints file ((N, 56) OpenPose-18 rows, absolute
frame numbers); the annotation CSVs hold the mean over annotators (soft category scores, as
BoLD's) and the mean valence, arousal and dominance. Videos, not clips, are split into train,
val and test. beenet-import.json records every instance's source file, span, person id and
annotators, the pose backend and the tracker, and the rows that were not imported.

The labels file (a header row starting with 'video' is skipped), one row per annotator:
  video,person_id,start_frame,end_frame,annotator,<26 categories 0/1>,valence,arousal,dominance
or, for a video with one person, the plain form (the person tracked longest, over the frames
they are tracked in):
  video,<26 categories 0/1>,valence,arousal,dominance
The categories are BoLD's 26 in CSV order (docs/bold-format.md); VAD on 1..10. 'video' is the
path relative to a folder given, or the file name.

A row that cannot be imported (a bad cell, a video not given or unreadable, a span outside the
video, a person id the tracker did not produce) is named with its line and skipped; the rest is
imported and a summary ends the run.
"""

EPILOG = """\
exit status:
  0  the dataset was written (problems, if any, are listed)
  1  nothing could be imported, or OUT exists and is not empty

examples:
  beenet import clips/ --labels labels.csv --out my-dataset
  beenet import a.mp4 b.mp4 c.mp4 --labels labels.csv --out my-dataset --val-fraction 0.34 --seed 1
  beenet data check my-dataset   # then train / eval on it (docs/own-data.md)
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEOS", help="video files or folders of videos")
    p.add_argument("--labels", required=True, metavar="CSV", help="the labels file (see above)")
    p.add_argument("--out", required=True, metavar="DATASET", help="the dataset folder to write (new or empty)")
    p.add_argument("--val-fraction", type=fraction, default=0.2, metavar="F",
                   help="fraction of the videos in val (default 0.2; at least one video when above 0)")
    p.add_argument("--test-fraction", type=fraction, default=0.0, metavar="F",
                   help="fraction of the videos in test (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split of the videos (default 0)")
    # beenet.inference.pose loads torch: its choices and option parser are used in run only.
    p.add_argument("--pose", default="auto", metavar="BACKEND",
                   help="pose backend, as 'beenet predict --pose' (default auto); the person ids depend on it")
    p.add_argument("--pose-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the pose backend, repeatable (as 'beenet predict')")
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="where the pose backend runs (default cpu)")
    return p


def run(args: argparse.Namespace) -> int:
    from beenet.importing.build import import_dataset  # lazy: loads torch; --help stays fast
    from beenet.inference.pose import make_pose_backend, parse_pose_option  # lazy: same

    try:
        options = dict(parse_pose_option(text) for text in args.pose_option)
    except argparse.ArgumentTypeError as exc:
        raise BeenetError(f"--pose-option {exc}") from None

    backends: list = []

    def pose():  # built when the first video is to be tracked: a labels file with no usable row needs none
        if not backends:
            try:
                backend = make_pose_backend(args.pose, device=args.device, **options)
                backends.append(backend)
                backend.reset()
            except ImportError as exc:
                raise BeenetError(f"the pose backend {args.pose!r} cannot be used: {exc}") from None
        return backends[0]

    try:
        report = import_dataset(args.videos, args.labels, args.out, pose, val_fraction=args.val_fraction,
                                test_fraction=args.test_fraction, seed=args.seed,
                                say=lambda line: print(f"beenet import: skipped: {line}", file=sys.stderr))
    finally:
        for backend in backends:
            backend.close()
    print(report.summary())
    return 0
