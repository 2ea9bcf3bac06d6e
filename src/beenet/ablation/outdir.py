"""The output folder of ``beenet ablate``: what it holds, and the refusal to write into anyone
else's folder (the rule of ``beenet train``, ``synth`` and ``demo``: beenet never overwrites or
writes into a folder holding files it did not write).

An ablation's folder holds :data:`STUDY_FILE` (written first, so it marks the folder as an
ablation's), ``results.csv``, ``summary.csv``, ``summary.md``, ``runs/`` and the temp files of an
interrupted atomic write (``.*.tmp``). The same command on its own folder resumes the study.
"""

from __future__ import annotations

from pathlib import Path

from beenet.errors import ConfigError

#: The file that marks a folder as an ablation's (the study, config and overrides that made it).
STUDY_FILE = "study.json"
#: Everything an ablation writes at the top of its folder.
ABLATION_FILES = (STUDY_FILE, "results.csv", "summary.csv", "summary.md", "runs")


def _own(name: str) -> bool:
    return name in ABLATION_FILES or (name.startswith(".") and name.endswith(".tmp"))


def check_ablation_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, a non-empty folder that is not an earlier ablation (no
    :data:`STUDY_FILE`: a user's ``summary.md`` or ``results.csv`` would be overwritten), or an
    earlier ablation's folder holding files it did not write. A missing or empty folder, or an
    ablation's own folder (to resume it), passes."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder: choose a new --out directory")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not names:
        return
    foreign = [n for n in names if not _own(n)]
    if STUDY_FILE not in names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ConfigError(
            f"{out} is not empty and is not an earlier ablation (no {STUDY_FILE}; it holds {shown}); "
            "beenet never overwrites or writes into such a directory: choose a new --out directory"
        )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(
            f"{out} holds an ablation and files it did not write ({shown}); beenet never writes into "
            "such a directory: move them out, or choose a new --out directory"
        )
