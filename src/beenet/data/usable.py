"""Which instances can be used: the one verdict that training and ``beenet data check`` share.

An instance is **usable** when its clip's video opens (header and packet index read, at least one
frame) and its joints file, when present, loads as a valid joints array; a run that reads
skeletons or body crops (``need_joints``) also needs the joints file to exist. A joints file is
always read when present (it picks the frames), so a corrupt one makes the instance unusable
even for a model without skeletons.

:func:`clip_status` looks at one clip once; :func:`clip_statuses` does many in a thread pool
(opening a video is mostly I/O and FFmpeg, which runs without the GIL); :func:`usable_instances`
splits instances into the kept ones and the left-out ones with their reasons.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from beenet.data.bold import BoLD, Instance
from beenet.data.joints import load_joints_array
from beenet.media.video import VideoReader
from beenet.errors import BeenetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipStatus:
    """What is wrong with one clip's files: ``video`` / ``joints`` hold the reason (naming the
    file), None when fine; ``joints_missing`` when there is no joints file at all."""

    clip: str
    video: str | None
    joints: str | None
    joints_missing: bool

    def problem(self, need_joints: bool) -> str | None:
        """Why the clip's instances cannot be used (None: they can)."""
        if self.video is not None:
            return self.video
        if self.joints is not None and (need_joints or not self.joints_missing):
            return self.joints
        return None


def clip_status(bold: BoLD, clip: str) -> ClipStatus:
    """Open the clip's video (header and packet index) and load its joints file once."""
    video_path = bold.video_path(clip)
    video: str | None = None
    if not video_path.is_file():
        video = f"{video_path}: video file not found"
    else:
        try:
            with VideoReader(video_path) as reader:
                if reader.num_frames < 1:
                    video = f"{video_path}: the video has no frame"
        except BeenetError as exc:
            video = str(exc)
    joints_path = bold.joints_path(clip)
    if not joints_path.is_file():
        return ClipStatus(clip, video, f"{joints_path}: joints file not found", True)
    try:
        load_joints_array(joints_path)
    except BeenetError as exc:
        return ClipStatus(clip, video, str(exc), False)
    return ClipStatus(clip, video, None, False)


def clip_statuses(bold: BoLD, clips: Iterable[str], workers: int | None = None) -> dict[str, ClipStatus]:
    """:func:`clip_status` of each distinct clip, in a thread pool of ``workers`` threads."""
    todo = list(dict.fromkeys(clips))
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    if len(todo) <= 1 or workers <= 1:
        return {c: clip_status(bold, c) for c in todo}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(todo, pool.map(lambda c: clip_status(bold, c), todo)))


def usable_instances(
    bold: BoLD, instances: Sequence[Instance], need_joints: bool = False, *, what: str = "instances",
    statuses: dict[str, ClipStatus] | None = None,
) -> tuple[list[Instance], list[tuple[Instance, str]]]:
    """``(kept, left_out)``: the usable instances in order, and the others with their reason.

    Each left-out clip is logged once (WARNING: file and reason); ``what`` names the instances
    in the summary line (e.g. ``"train instances"``).
    """
    if statuses is None:
        statuses = clip_statuses(bold, (i.clip for i in instances))
    kept: list[Instance] = []
    left_out: list[tuple[Instance, str]] = []
    logged: set[str] = set()
    for inst in instances:
        reason = statuses[inst.clip].problem(need_joints)
        if reason is None:
            kept.append(inst)
            continue
        left_out.append((inst, reason))
        if inst.clip not in logged:
            logged.add(inst.clip)
            log.warning("left out %s: %s", inst.clip, reason)
    if left_out:
        log.warning("%d of %d %s left out (%d clips: missing or unreadable files, listed above; "
                    "'beenet data check' lists them too)", len(left_out), len(instances), what, len(logged))
    return kept, left_out
