"""The plan of a synthetic BoLD: every clip, person, label and split, decided before any drawing.

:func:`plan_dataset` reads nothing but its :class:`SynthConfig` and draws everything from one
``numpy`` generator seeded with ``config.seed``, in a fixed order: the same config gives the same
plan, hence byte-identical annotations, joints and sidecar. The labels follow
:mod:`beenet.data.synth.rules`; the pixels are :mod:`beenet.data.synth.render`'s business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beenet.data.synth import draw
from beenet.data.synth.poses import ARCHETYPES, Motion
from beenet.data.synth.rules import (
    ANNOTATORS,
    EMOTION_TABLE,
    GROUP_CONFUSION,
    OBJECT_NAMES,
    SCENE_NAMES,
    SCENE_OBJECTS,
    VAD_NOISE,
    VOTE_IN_GROUP,
    archetype_groups,
    cell_weights,
    vad_from_scores,
    vote_probabilities,
)
from beenet.errors import ConfigError
from beenet.labels import NUM_CATEGORIES, POSITIVE_THRESHOLD

#: The youtube-id directory level of BoLD's paths.
BOLD_SUBDIR = "003"

FRAME_RATES: tuple[float, ...] = (23.976, 25.0, 29.97, 30.0)
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Same config -> byte-identical CSVs, joints and sidecar."""

    num_clips: int = 200
    seed: int = 0
    width: int = 192
    height: int = 144
    min_frames: int = 40
    max_frames: int = 90

    def validate(self) -> None:
        if self.num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1, got {self.num_clips}")
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ConfigError(f"frame size must be even and at least 32x32, got {self.width}x{self.height}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ConfigError(f"need 8 <= min_frames <= max_frames, got {self.min_frames}..{self.max_frames}")


@dataclass(frozen=True)
class ObjectPlan:
    name: str
    x: float
    y: float
    size: float


@dataclass(frozen=True)
class PersonPlan:
    """One detected person of a clip; ``annotated`` people have labels and a CSV row."""

    person_id: int
    annotated: bool
    archetype: str
    start: int                 # first frame with a joints row (clip-relative)
    end: int                   # last frame with a joints row (inclusive)
    dropped: tuple[int, ...]   # frames inside [start, end] with no joints row (detector misses)
    height_px: float
    x: float                   # horizontal centre at frame 0
    drift: float               # pixels per frame
    feet_y: float
    motion: Motion
    group: str | None = None           # the group the body expresses in this scene
    perceived: str | None = None       # the group the annotators saw (differs under label noise)
    categories: tuple[float, ...] | None = None
    vad: tuple[float, float, float] | None = None
    annotators: int = 0
    gender: int = 0
    age: int = 0
    ethnicity: int = 0
    confidence: float = 0.0


@dataclass(frozen=True)
class ClipPlan:
    video: str           # relative to videos/, e.g. "003/AbC-12_xyz.mp4/0042.mp4"
    fps: float
    num_frames: int
    frame_offset: int    # absolute number of the clip's first frame (as in the joints file)
    scene: str
    objects: tuple[ObjectPlan, ...]
    people: tuple[PersonPlan, ...]
    split: str
    render_seed: int

    @property
    def annotated(self) -> tuple[PersonPlan, ...]:
        return tuple(p for p in self.people if p.annotated)


@dataclass
class SynthPlan:
    config: SynthConfig
    clips: list[ClipPlan] = field(default_factory=list)

    def instances(self, split: str | None = None) -> list[tuple[ClipPlan, PersonPlan]]:
        """(clip, annotated person) pairs, optionally of one split, in CSV order."""
        return [(c, p) for c in self.clips if split is None or c.split == split for p in c.annotated]


def _youtube_id(rng: np.random.Generator) -> str:
    return "".join(_ID_ALPHABET[i] for i in rng.integers(0, len(_ID_ALPHABET), size=11))



def _label(rng: np.random.Generator, archetype: str, scene: str, objects: list[str]) -> dict[str, Any]:
    """Simulated crowd annotation of one person: soft categories, VAD, metadata."""
    group = EMOTION_TABLE[archetype][scene]
    perceived = group
    if rng.random() < GROUP_CONFUSION:
        others = [g for g in archetype_groups(archetype) if g != group]
        perceived = others[int(rng.integers(len(others)))]
    p_in = float(rng.uniform(*VOTE_IN_GROUP))
    n = int(rng.integers(ANNOTATORS[0], ANNOTATORS[1] + 1))
    votes = rng.random((n, NUM_CATEGORIES)) < vote_probabilities(perceived, objects, p_in)
    scores = votes.mean(axis=0)
    vad = vad_from_scores(scores) + rng.normal(0.0, VAD_NOISE, size=3)
    vad = np.clip(vad, 1.0, 10.0)
    return dict(group=group, perceived=perceived, categories=tuple(float(round(s, 6)) for s in scores),
                vad=tuple(float(round(v, 4)) for v in vad), annotators=n,
                gender=int(rng.integers(0, 2)), age=int(rng.integers(0, 3)),
                ethnicity=int(rng.integers(0, 4)),
                confidence=float(round(np.clip(p_in + rng.normal(0, 0.03), 0.0, 1.0), 4)))


def _presence(rng: np.random.Generator, T: int, from_start: bool, partial: float,
              miss_rate: float) -> tuple[int, int, tuple[int, ...]]:
    """(start, end, dropped frames) of one person's detections in a clip of T frames."""
    start, end = 0, T - 1
    if not from_start and rng.random() < partial:
        start = int(rng.integers(1, max(2, T // 4)))
    if rng.random() < partial:
        end = int(rng.integers(min(T - 1, 3 * T // 4), T))
    dropped: set[int] = set()
    for _ in range(int(rng.poisson(miss_rate))):
        if end - start < 6:
            break
        run = int(rng.integers(1, 5))
        t0 = int(rng.integers(start + 1, max(start + 2, end - run)))
        dropped.update(range(t0, min(t0 + run, end)))
    return start, end, tuple(sorted(dropped))


def _plan_people(rng: np.random.Generator, cfg: SynthConfig, T: int, scene: str,
                 objects: list[str], p_arch: np.ndarray) -> tuple[PersonPlan, ...]:
    W, H = cfg.width, cfg.height
    n_ann = int(rng.choice([1, 2, 3], p=[0.62, 0.28, 0.10]))
    n_by = int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15]))
    ids = rng.permutation(12)[: n_ann + n_by]
    people: list[PersonPlan] = []
    floor = draw.SCENE_LOOKS[scene].floor
    for k in range(n_by):  # bystanders: small, further back, any archetype, no labels
        start, end, dropped = _presence(rng, T, False, 0.6, 1.5)
        height_px = H * rng.uniform(0.26, 0.36)
        people.append(PersonPlan(
            person_id=int(ids[n_ann + k]), annotated=False,
            archetype=ARCHETYPES[int(rng.integers(len(ARCHETYPES)))],
            start=start, end=end, dropped=dropped, height_px=height_px,
            x=W * rng.uniform(0.1, 0.9), drift=float(rng.uniform(-0.3, 0.3)),
            feet_y=H * min(0.86, max(0.62, floor + rng.uniform(0.05, 0.15))),
            motion=_random_motion(rng)))
    slots = rng.permutation(n_ann)
    for k in range(n_ann):
        archetype = ARCHETYPES[int(rng.choice(len(ARCHETYPES), p=p_arch))]
        # the first annotated person is seen from the clip's first frame: the joints file's
        # minimum frame is then the clip's frame 0, as the BoLD reader assumes
        start, end, dropped = _presence(rng, T, k == 0, 0.35, 0.8)
        height_px = H * rng.uniform(0.55, 0.72) * (1.0 if n_ann == 1 else 0.9)
        people.append(PersonPlan(
            person_id=int(ids[k]), annotated=True, archetype=archetype,
            start=start, end=end, dropped=dropped, height_px=height_px,
            x=W * (slots[k] + 0.5 + rng.uniform(-0.15, 0.15)) / n_ann,
            drift=float(rng.uniform(-0.12, 0.12)), feet_y=H * rng.uniform(0.9, 0.97),
            motion=_random_motion(rng), **_label(rng, archetype, scene, objects)))
    return tuple(people)


def _random_motion(rng: np.random.Generator) -> Motion:
    return Motion(speed=float(rng.uniform(0.8, 1.25)), amplitude=float(rng.uniform(0.7, 1.3)),
                         phase=float(rng.uniform(0, 2 * math.pi)), facing=int(rng.choice([-1, 1])))


def _plan_objects(rng: np.random.Generator, cfg: SynthConfig, scene: str) -> tuple[ObjectPlan, ...]:
    pool = SCENE_OBJECTS[scene]
    names: list[str] = []
    if rng.random() >= 0.1:  # a tenth of the clips show no object at all
        names = [pool[int(i)] for i in rng.integers(0, len(pool), size=1 + int(rng.binomial(3, 0.5)))]
    if rng.random() < 0.2:  # something out of place now and then
        names.append(OBJECT_NAMES[int(rng.integers(len(OBJECT_NAMES)))])
    W, H = cfg.width, cfg.height
    floor = draw.SCENE_LOOKS[scene].floor
    out = []
    for name in names:
        size = H * draw.OBJECT_PAINTERS[name][1] * rng.uniform(0.85, 1.15)
        if name in draw.WALL_OBJECTS:
            y = H * rng.uniform(0.2, max(0.22, floor - 0.1))
        else:
            y = H * rng.uniform(max(floor + 0.08, 0.55), 0.99)
        out.append(ObjectPlan(name, float(W * rng.uniform(0.08, 0.92)), float(y), float(size)))
    return tuple(out)


def _stratified_split(clip_pos: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Clip-disjoint train/val/test split with every category's positives spread in proportion
    (iterative stratification, Sechidis et al. 2011). ``clip_pos`` is ``[clips, 26]`` positive counts."""
    parts = list(SPLIT_FRACTIONS)
    frac = np.array([SPLIT_FRACTIONS[p] for p in parts])
    n = clip_pos.shape[0]
    want_n = frac * n
    want_c = frac[:, None] * clip_pos.sum(axis=0)[None, :]
    left = np.ones(n, dtype=bool)
    out = [""] * n

    def assign(i: int, scores: np.ndarray) -> None:
        best = np.flatnonzero(scores == scores.max())
        if len(best) > 1:
            sub = want_n[best]
            best = best[sub == sub.max()]
        j = int(best[int(rng.integers(len(best)))])
        out[i] = parts[j]
        want_n[j] -= 1
        want_c[j] -= clip_pos[i]
        left[i] = False

    while left.any():
        remaining = (clip_pos[left] > 0).sum(axis=0)
        if remaining.max() == 0:
            for i in rng.permutation(np.flatnonzero(left)):
                assign(int(i), want_n.copy())
            break
        c = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for i in rng.permutation(np.flatnonzero(left & (clip_pos[:, c] > 0))):
            assign(int(i), want_c[:, c].copy())
    return out


def plan_dataset(config: SynthConfig) -> SynthPlan:
    """Decide every clip, person, label and split from ``config.seed`` (no drawing, fast)."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    cells = cell_weights()
    p_scene = cells.sum(axis=0)
    # BoLD cuts several numbered clips out of one YouTube video: group clips under shared ids
    videos: list[tuple[str, float]] = []
    numbers: list[int] = []
    while len(videos) < config.num_clips:
        yid = _youtube_id(rng)
        fps = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
        k = min(int(rng.integers(1, 5)), config.num_clips - len(videos))
        for num in sorted(rng.choice(np.arange(1, 1000), size=k, replace=False)):
            videos.append((f"{BOLD_SUBDIR}/{yid}.mp4/{int(num):04d}.mp4", fps))
            numbers.append(int(num))
    clips: list[dict[str, Any]] = []
    for video, fps in videos:
        T = int(rng.integers(config.min_frames, config.max_frames + 1))
        scene = SCENE_NAMES[int(rng.choice(len(SCENE_NAMES), p=p_scene))]
        objects = _plan_objects(rng, config, scene)
        s = SCENE_NAMES.index(scene)
        p_arch = cells[:, s] / cells[:, s].sum()
        people = _plan_people(rng, config, T, scene, [o.name for o in objects], p_arch)
        clips.append(dict(video=video, fps=fps, num_frames=T, frame_offset=int(rng.integers(0, 20000)),
                          scene=scene, objects=objects, people=people,
                          render_seed=int(rng.integers(0, 2**63 - 1))))
    clip_pos = np.array([[sum(p.categories[k] >= POSITIVE_THRESHOLD for p in c["people"] if p.annotated)
                          for k in range(NUM_CATEGORIES)] for c in clips], dtype=np.int64)
    splits = _stratified_split(clip_pos, rng)
    return SynthPlan(config, [ClipPlan(split=sp, **c) for c, sp in zip(clips, splits)])
