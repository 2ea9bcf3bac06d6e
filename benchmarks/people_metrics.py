"""Scores of person finding and tracking against hand-made truth (``benchmarks/footage/truth/*.json``,
format: docs of ``bench_people.py``): recall of clearly visible people, false people, ids per true
person, identity switches and IDF1 on the sampled frames. Pure functions on boxes and ids, used by
``bench_people.py`` and its test.

A detection matches a truth box when their IoU is at least 0.3 or each box holds the other's
centre; matching is greedy and one-to-one, best IoU first, the people who count (not tiny) before
the tiny ones (a detection on a tiny person is neither a hit nor a false person).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

MIN_IOU = 0.3

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _holds_centre(outer: Box, inner: Box) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def matches(det: Box, truth: Box) -> bool:
    """IoU >= 0.3, or each box holds the other's centre."""
    return iou(det, truth) >= MIN_IOU or (_holds_centre(det, truth) and _holds_centre(truth, det))


def match_frame(dets: list[Box], truths: list[Box], tiny: list[bool]) -> dict[int, int]:
    """``truth index -> detection index``: greedy one-to-one, best IoU first, people who count
    (not ``tiny``) before tiny ones."""
    out: dict[int, int] = {}
    used: set[int] = set()
    for want_tiny in (False, True):
        pairs = sorted(((iou(d, truths[t]), t, j) for t in range(len(truths)) if tiny[t] == want_tiny
                        for j, d in enumerate(dets) if matches(d, truths[t])), reverse=True)
        for _, t, j in pairs:
            if t not in out and j not in used:
                out[t] = j
                used.add(j)
    return out


@dataclass
class ClipScore:
    """What one run found on one clip's sampled frames."""

    frames: int = 0  # sampled frames scored
    people: int = 0  # truth people who count (not tiny)
    found: int = 0  # of them matched
    tiny: int = 0
    tiny_found: int = 0
    false: int = 0  # detections matching nobody
    detections: int = 0
    identities: bool = False
    persons: int = 0  # true persons (ids) matched at least once, clips with identities
    id_pairs: int = 0  # distinct (true person, track id) pairs matched
    switches: int = 0
    shared_ids: int = 0  # track ids matched to two or more true persons
    idf1: float | None = None
    missed_persons: list[str] = field(default_factory=list)  # true ids (not tiny) never matched

    @property
    def recall(self) -> float | None:
        return self.found / self.people if self.people else None

    @property
    def ids_per_person(self) -> float | None:
        return self.id_pairs / self.persons if self.identities and self.persons else None


def _shot_of(frame: int, cuts: list[int]) -> int:
    return sum(1 for c in cuts if c <= frame)


def score_clip(truth: dict, det_boxes: dict[int, list[tuple[int, Box]]]) -> ClipScore:
    """Score the detections ``det_boxes`` (frame -> [(track id, box)]) on the sampled frames of
    ``truth`` (its ``frames``: frame -> [{"id", "box", "tiny"}]) that ``det_boxes`` covers (a frame
    absent from it was not analysed: left out)."""
    s = ClipScore(identities=bool(truth.get("identities")))
    cuts = [int(c) for c in truth.get("shot_cuts", [])]
    seq: dict[str, list[tuple[int, int]]] = {}  # true id -> [(frame, track id)] where matched
    counted: set[str] = set()  # true ids seen at least once not tiny
    pair_count: dict[tuple[str, int], int] = {}
    unmatched_true = unmatched_det = 0
    for key in sorted(truth["frames"], key=int):
        f = int(key)
        if f not in det_boxes:
            continue
        people = truth["frames"][key]
        dets = det_boxes[f]
        boxes = [tuple(map(float, p["box"])) for p in people]
        tiny = [bool(p.get("tiny", False)) for p in people]
        m = match_frame([b for _, b in dets], boxes, tiny)  # type: ignore[misc]
        s.frames += 1
        s.detections += len(dets)
        s.false += len(dets) - len(m)
        unmatched_det += len(dets) - len(m)
        for t, p in enumerate(people):
            pid = str(p.get("id", f"{f}:{t}"))
            if tiny[t]:
                s.tiny += 1
                s.tiny_found += t in m
                continue
            s.people += 1
            counted.add(pid)
            if t in m:
                s.found += 1
                track = dets[m[t]][0]
                seq.setdefault(pid, []).append((f, track))
                pair_count[(pid, track)] = pair_count.get((pid, track), 0) + 1
            else:
                unmatched_true += 1
    if s.identities:
        _score_ids(s, seq, counted, cuts, pair_count, unmatched_true, unmatched_det)
    return s


def _score_ids(s: ClipScore, seq: dict[str, list[tuple[int, int]]], counted: set[str], cuts: list[int],
               pair_count: dict[tuple[str, int], int], unmatched_true: int, unmatched_det: int) -> None:
    """Ids per true person, switches (a person's track id changes between two consecutive frames
    where they are matched, within one shot: tracks end at cuts by design), track ids shared by two
    true persons, and IDF1 over the sampled frames (the best one-to-one map of true ids to track ids)."""
    from scipy.optimize import linear_sum_assignment  # lazy: only clips with identities need it

    s.persons = len(seq)
    s.missed_persons = sorted(counted - set(seq))
    s.id_pairs = len(pair_count)
    for items in seq.values():
        for (fa, a), (fb, b) in itertools.pairwise(items):
            if a != b and _shot_of(fa, cuts) == _shot_of(fb, cuts):
                s.switches += 1
    owners: dict[int, set[str]] = {}
    for pid, track in pair_count:
        owners.setdefault(track, set()).add(pid)
    s.shared_ids = sum(1 for o in owners.values() if len(o) > 1)
    pids = sorted({p for p, _ in pair_count})
    tracks = sorted(owners)
    tp = 0
    if pids:
        w = np.zeros((len(pids), len(tracks)))
        for (p, t), n in pair_count.items():
            w[pids.index(p), tracks.index(t)] = n
        r, c = linear_sum_assignment(-w)
        tp = int(w[r, c].sum())
    total_true = s.found + unmatched_true
    total_det = s.found + unmatched_det
    s.idf1 = 2 * tp / (total_true + total_det) if total_true + total_det else None


def add_up(scores: list[ClipScore]) -> ClipScore:
    """The scores of several clips as one (IDF1: weighted by the clips' boxes)."""
    out = ClipScore(identities=any(s.identities for s in scores))
    for name in ("frames", "people", "found", "tiny", "tiny_found", "false", "detections", "switches",
                 "shared_ids"):
        setattr(out, name, sum(getattr(s, name) for s in scores))
    ided = [s for s in scores if s.identities]
    out.persons = sum(s.persons for s in ided)
    out.id_pairs = sum(s.id_pairs for s in ided)
    weights = [(s.idf1, s.people + s.detections) for s in ided if s.idf1 is not None]
    if weights and sum(w for _, w in weights):
        out.idf1 = sum(v * w for v, w in weights) / sum(w for _, w in weights)
    return out
