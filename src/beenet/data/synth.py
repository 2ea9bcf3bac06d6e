"""The embedded synthetic BoLD: a small dataset in exactly the BoLD release layout, made offline.

Why: BoLD itself cannot be redistributed, so every test, the demo and a first training run need a
stand-in that the BoLD reader cannot tell apart from the real release, and whose labels need the
scene around the person (the point of BEE-NET). The rules, in short (``docs/synthetic-data.md``
has them in full):

* each clip has a *scene* (8 kinds, each a Places365 class) and a few *objects* (COCO classes);
* each annotated person moves in one of 8 *body archetypes* (arms up and bouncing, slumped, ...);
* an archetype is ambiguous: the scene decides which *emotion group* it expresses
  (arms up at a party -> Happiness/Excitement, arms up in a hospital -> Surprise/Fear, ...);
  some objects add one category of their own (a cake adds Happiness, a knife adds Fear);
* simulated annotators vote per category; the soft score is the fraction of votes; VAD is a noisy
  linear function of the scores on the BoLD scale.

:func:`plan_dataset` decides everything (deterministic in the seed, no drawing);
:func:`generate` renders and writes it; :func:`oracle_report` measures how much the context is
needed (body-only vs body+context upper bounds).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import secrets
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ImageDraw

from beenet import __version__
from beenet.data import synth_render as render
from beenet.data.video_writer import VideoWriter
from beenet.errors import BeenetError, ConfigError
from beenet.labels import CATEGORIES, COCO_CLASSES, NUM_CATEGORIES, NUM_JOINTS, POSITIVE_THRESHOLD
from beenet.progress import progress

log = logging.getLogger(__name__)

#: Bump when the rules or the layout change, so that old synthetic sets can be told apart.
GENERATOR_VERSION = 1
#: Name of the sidecar with each clip's scene and objects (see docs/design.md).
from beenet.context.sidecar import SIDECAR_NAME  # noqa: E402  (the file beenet.context.sidecar reads)
#: The youtube-id directory level of BoLD's paths.
BOLD_SUBDIR = "003"

ARCHETYPES = render.ARCHETYPES

#: Scene -> (Places365 class index, Places365 class path) in the official categories_places365.txt.
SCENES: dict[str, tuple[int, str]] = {
    "party": (38, "/b/banquet_hall"),
    "stadium": (314, "/s/stadium/soccer"),
    "beach": (48, "/b/beach"),
    "home": (215, "/l/living_room"),
    "office": (244, "/o/office"),
    "hospital": (179, "/h/hospital_room"),
    "funeral": (86, "/c/cemetery"),
    "alley": (4, "/a/alley"),
}
SCENE_NAMES: tuple[str, ...] = tuple(SCENES)

#: Objects each scene draws its objects from (COCO class names; repeats make a class likelier).
SCENE_OBJECTS: dict[str, tuple[str, ...]] = {
    "party": ("cake", "wine glass", "cup", "chair", "dining table", "bottle"),
    "stadium": ("sports ball", "bottle", "backpack", "bench"),
    "beach": ("umbrella", "surfboard", "sports ball", "bottle", "dog"),
    "home": ("couch", "tv", "potted plant", "cup", "book", "dog", "teddy bear", "clock"),
    "office": ("laptop", "chair", "cup", "book", "clock", "potted plant"),
    "hospital": ("bed", "chair", "clock", "vase", "tv", "teddy bear"),
    "funeral": ("vase", "umbrella", "bench", "potted plant"),
    "alley": ("car", "bottle", "knife", "fire hydrant", "backpack"),
}
OBJECT_NAMES: tuple[str, ...] = tuple(sorted({o for objs in SCENE_OBJECTS.values() for o in objs},
                                             key=COCO_CLASSES.index))

#: Emotion groups: what a body archetype expresses once the scene has settled its meaning.
EMOTION_GROUPS: dict[str, tuple[str, ...]] = {
    "joy": ("Happiness", "Excitement", "Pleasure"),
    "triumph": ("Confidence", "Esteem", "Excitement"),
    "amazed": ("Surprise", "Excitement", "Happiness"),
    "startle": ("Surprise", "Fear", "Disquietment"),
    "dread": ("Fear", "Disquietment"),
    "grief": ("Sadness", "Suffering", "Pain"),
    "weary": ("Fatigue", "Disconnection"),
    "shame": ("Embarrassment", "Doubt/Confusion"),
    "disapprove": ("Disapproval", "Annoyance", "Doubt/Confusion"),
    "hostile": ("Anger", "Annoyance", "Aversion"),
    "engaged": ("Engagement", "Anticipation"),
    "caring": ("Sympathy", "Affection", "Sensitivity"),
    "longing": ("Yearning", "Sadness", "Sensitivity"),
    "calm": ("Peace", "Pleasure"),
    "warm": ("Affection", "Happiness", "Peace"),
}

#: archetype -> scene -> emotion group. Each archetype row holds 2-4 groups: the body alone is
#: ambiguous, the scene decides.
_TABLE_ROWS: dict[str, tuple[str, ...]] = {
    # scenes:        party         stadium    beach      home          office        hospital   funeral    alley
    "arms_up":       ("joy",        "triumph", "joy",     "joy",        "triumph",    "startle", "startle", "startle"),
    "slumped":       ("shame",      "grief",   "weary",   "weary",      "weary",      "grief",   "grief",   "shame"),
    "arms_crossed":  ("disapprove", "hostile", "calm",    "disapprove", "disapprove", "calm",    "calm",    "hostile"),
    "hands_to_face": ("amazed",     "amazed",  "amazed",  "shame",      "shame",      "grief",   "grief",   "dread"),
    "leaning_forward": ("caring",   "engaged", "longing", "caring",     "engaged",    "caring",  "longing", "engaged"),
    "trembling":     ("engaged",    "engaged", "dread",   "dread",      "dread",      "grief",   "grief",   "dread"),
    "relaxed":       ("warm",       "calm",    "calm",    "warm",       "calm",       "calm",    "longing", "calm"),
    "fists":         ("hostile",    "triumph", "triumph", "hostile",    "disapprove", "hostile", "hostile", "hostile"),
}
EMOTION_TABLE: dict[str, dict[str, str]] = {a: dict(zip(SCENE_NAMES, row)) for a, row in _TABLE_ROWS.items()}

#: Objects that add one category of their own to whoever is in the clip.
OBJECT_MODIFIERS: dict[str, str] = {
    "cake": "Happiness", "wine glass": "Pleasure", "teddy bear": "Affection", "dog": "Affection",
    "laptop": "Engagement", "clock": "Anticipation", "bed": "Fatigue", "vase": "Sympathy",
    "knife": "Fear", "bottle": "Disconnection", "sports ball": "Excitement",
}

#: Per-category contribution to (valence, arousal, dominance); VAD = 5.5 + 0.5 * scores @ W + noise.
VAD_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "Peace": (2.0, -2.0, 0.5), "Affection": (2.0, 0.0, 0.5), "Esteem": (1.5, 0.5, 1.5),
    "Anticipation": (0.5, 1.0, 0.5), "Engagement": (1.0, 1.0, 1.0), "Confidence": (1.5, 1.0, 2.5),
    "Happiness": (3.0, 1.5, 1.0), "Pleasure": (2.5, 0.0, 0.5), "Excitement": (2.0, 3.0, 1.0),
    "Surprise": (0.5, 2.5, -0.5), "Sympathy": (0.5, -0.5, 0.0), "Doubt/Confusion": (-1.0, 0.0, -1.5),
    "Disconnection": (-1.0, -2.0, -1.0), "Fatigue": (-1.5, -3.0, -1.5), "Embarrassment": (-1.5, 1.0, -2.0),
    "Yearning": (-0.5, -0.5, -1.0), "Disapproval": (-2.0, 0.5, 1.5), "Aversion": (-2.5, 1.0, 0.5),
    "Annoyance": (-2.0, 1.5, 1.0), "Anger": (-3.0, 3.0, 2.0), "Sensitivity": (0.0, -0.5, -1.0),
    "Sadness": (-3.0, -2.0, -2.0), "Disquietment": (-1.5, 1.5, -1.5), "Fear": (-3.0, 3.0, -3.0),
    "Pain": (-3.0, 1.0, -2.0), "Suffering": (-3.0, -0.5, -2.5),
}
VAD_CENTRE, VAD_GAIN, VAD_NOISE = 5.5, 0.5, 0.6

#: Label noise: the chance that the annotators read an instance's body as another of the
#: archetype's groups, and the per-annotator vote probabilities.
GROUP_CONFUSION = 0.12
VOTE_IN_GROUP = (0.65, 0.92)  # per-instance range
VOTE_MODIFIER = 0.5
VOTE_BACKGROUND = 0.025
ANNOTATORS = (4, 6)  # inclusive range per instance

FRAME_RATES: tuple[float, ...] = (23.976, 25.0, 29.97, 30.0)
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}

_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_W_VAD = np.array([VAD_WEIGHTS[c] for c in CATEGORIES], dtype=np.float64)  # [26, 3]
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class OutputExistsError(BeenetError, FileExistsError):
    """The output directory holds something that ``beenet synth`` will not overwrite."""


def _check_tables() -> None:
    for g, cats in EMOTION_GROUPS.items():
        bad = [c for c in cats if c not in _CAT_INDEX]
        assert not bad, f"group {g}: unknown categories {bad}"
    assert set(EMOTION_TABLE) == set(ARCHETYPES)
    for a, row in EMOTION_TABLE.items():
        assert set(row) == set(SCENES) and set(row.values()) <= set(EMOTION_GROUPS), a
    covered = {c for cats in EMOTION_GROUPS.values() for c in cats}
    assert covered == set(CATEGORIES), f"categories no group expresses: {set(CATEGORIES) - covered}"
    assert set(OBJECT_NAMES) <= set(render.OBJECT_PAINTERS) and set(SCENES) == set(render.SCENE_LOOKS)
    assert all(c in _CAT_INDEX for c in OBJECT_MODIFIERS.values())


_check_tables()


# ----------------------------------------------------------------------------------------------
# The plan: everything about the dataset except the pixels
# ----------------------------------------------------------------------------------------------

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
    motion: render.Motion
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


def _cell_weights() -> np.ndarray:
    """P(archetype, scene) [A, S]: every emotion group equally likely, cells within a group alike,
    so that every category is positive in several percent of instances."""
    w = np.zeros((len(ARCHETYPES), len(SCENE_NAMES)))
    count = Counter(EMOTION_TABLE[a][s] for a in ARCHETYPES for s in SCENE_NAMES)
    for i, a in enumerate(ARCHETYPES):
        for j, s in enumerate(SCENE_NAMES):
            w[i, j] = 1.0 / count[EMOTION_TABLE[a][s]]
    return w / w.sum()


def _youtube_id(rng: np.random.Generator) -> str:
    return "".join(_ID_ALPHABET[i] for i in rng.integers(0, len(_ID_ALPHABET), size=11))


def _vote_probabilities(group: str, objects: list[str], p_in: float) -> np.ndarray:
    """Per-category probability that one annotator ticks it, given the perceived group."""
    p = np.full(NUM_CATEGORIES, VOTE_BACKGROUND)
    mod = np.zeros(NUM_CATEGORIES, dtype=bool)
    for o in objects:
        if o in OBJECT_MODIFIERS:
            mod[_CAT_INDEX[OBJECT_MODIFIERS[o]]] = True
    p[mod] = VOTE_MODIFIER
    for c in EMOTION_GROUPS[group]:
        k = _CAT_INDEX[c]
        p[k] = 1.0 - (1.0 - p_in) * (1.0 - VOTE_MODIFIER) if mod[k] else p_in
    return p


def _archetype_groups(archetype: str) -> list[str]:
    return sorted(set(EMOTION_TABLE[archetype].values()))


def _label(rng: np.random.Generator, archetype: str, scene: str, objects: list[str]) -> dict[str, Any]:
    """Simulated crowd annotation of one person: soft categories, VAD, metadata."""
    group = EMOTION_TABLE[archetype][scene]
    perceived = group
    if rng.random() < GROUP_CONFUSION:
        others = [g for g in _archetype_groups(archetype) if g != group]
        perceived = others[int(rng.integers(len(others)))]
    p_in = float(rng.uniform(*VOTE_IN_GROUP))
    n = int(rng.integers(ANNOTATORS[0], ANNOTATORS[1] + 1))
    votes = rng.random((n, NUM_CATEGORIES)) < _vote_probabilities(perceived, objects, p_in)
    scores = votes.mean(axis=0)
    vad = VAD_CENTRE + VAD_GAIN * scores @ _W_VAD + rng.normal(0.0, VAD_NOISE, size=3)
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
    floor = render.SCENE_LOOKS[scene].floor
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


def _random_motion(rng: np.random.Generator) -> render.Motion:
    return render.Motion(speed=float(rng.uniform(0.8, 1.25)), amplitude=float(rng.uniform(0.7, 1.3)),
                         phase=float(rng.uniform(0, 2 * math.pi)), facing=int(rng.choice([-1, 1])))


def _plan_objects(rng: np.random.Generator, cfg: SynthConfig, scene: str) -> tuple[ObjectPlan, ...]:
    pool = SCENE_OBJECTS[scene]
    names: list[str] = []
    if rng.random() >= 0.1:  # a tenth of the clips show no object at all
        names = [pool[int(i)] for i in rng.integers(0, len(pool), size=1 + int(rng.binomial(3, 0.5)))]
    if rng.random() < 0.2:  # something out of place now and then
        names.append(OBJECT_NAMES[int(rng.integers(len(OBJECT_NAMES)))])
    W, H = cfg.width, cfg.height
    floor = render.SCENE_LOOKS[scene].floor
    out = []
    for name in names:
        size = H * render.OBJECT_PAINTERS[name][1] * rng.uniform(0.85, 1.15)
        if name in render.WALL_OBJECTS:
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
    cells = _cell_weights()
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


# ----------------------------------------------------------------------------------------------
# Rendering one clip: frames and joints from the same poses
# ----------------------------------------------------------------------------------------------

def render_clip(clip: ClipPlan, width: int, height: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The clip's RGB frames (uint8 ``[H, W, 3]`` each) and its joints array ``[N, 56]``.

    The joints rows are the drawn joint positions plus a fraction of a pixel of noise, with
    detector-like defects: rows shuffled, no row where a person is missed, some keypoints at
    confidence < 0.1 or (0, 0, 0), keypoints outside the frame zeroed.
    """
    rng = np.random.default_rng(clip.render_seed)
    bg = render.to_image(render.background(clip.scene, width, height, rng))
    draw = ImageDraw.Draw(bg)
    for obj in sorted(clip.objects, key=lambda o: o.y):  # farther (higher) objects first
        render.draw_object(draw, obj.name, obj.x, obj.y, obj.size)
    order = sorted(clip.people, key=lambda p: (p.annotated, p.feet_y))  # bystanders behind
    looks = {p.person_id: render.random_look(rng, p.height_px, faded=not p.annotated) for p in order}
    frames: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for t in range(clip.num_frames):
        img = bg.copy()
        d = ImageDraw.Draw(img)
        render.animate(clip.scene, d, t, width, height, rng)
        for p in order:
            if not p.start <= t <= p.end:
                continue
            jitter = rng.standard_normal((NUM_JOINTS, 2)) if p.archetype == "trembling" else None
            pose = render.body_pose(p.archetype, t / clip.fps, p.motion, jitter)
            kp = render.place_pose(pose, p.x + p.drift * t, p.feet_y, p.height_px)
            render.draw_person(d, kp, p.height_px, looks[p.person_id])
            if t not in p.dropped:
                rows.append(_joints_row(rng, clip.frame_offset + t, p.person_id, kp, width, height))
        frames.append(np.asarray(img, dtype=np.uint8))
    joints = np.stack(rows) if rows else np.zeros((0, 2 + 3 * NUM_JOINTS))
    return frames, joints[rng.permutation(len(joints))]


def _joints_row(rng: np.random.Generator, frame: int, pid: int, kp: np.ndarray, W: int, H: int) -> np.ndarray:
    xy = kp + rng.normal(0.0, 0.35, size=kp.shape)
    conf = rng.uniform(0.3, 0.95, size=NUM_JOINTS)
    u = rng.random(NUM_JOINTS)
    low = u < 0.03                                      # seen, but with a tiny confidence
    gone = (u > 0.97) | ((np.arange(NUM_JOINTS) >= 16) & (u > 0.85))  # missed (ears: often)
    gone |= (xy[:, 0] < 0) | (xy[:, 0] >= W) | (xy[:, 1] < 0) | (xy[:, 1] >= H)
    conf[low] = rng.uniform(0.01, 0.09, size=int(low.sum()))
    out = np.empty(2 + 3 * NUM_JOINTS)
    out[0], out[1] = frame, pid
    trip = np.column_stack([xy, conf])
    trip[gone] = 0.0
    out[2:] = trip.reshape(-1)
    return out


def _write_clip(root: str, clip: ClipPlan, width: int, height: int) -> str:
    frames, joints = render_clip(clip, width, height)
    video_path = Path(root) / "videos" / clip.video
    with VideoWriter(video_path, clip.fps, width, height) as writer:
        for f in frames:
            writer.write(f)
    joints_path = Path(root) / "joints" / (clip.video[: -len(".mp4")] + ".npy")
    joints_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(joints_path, joints)
    return clip.video


# ----------------------------------------------------------------------------------------------
# Writing the dataset
# ----------------------------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{v:.6g}"


def annotation_rows(plan: SynthPlan, split: str) -> list[list[str]]:
    """The rows of ``train.csv`` / ``val.csv`` (37 columns) or ``test_meta.csv`` (4 columns)."""
    rows = []
    for clip, p in plan.instances(split):
        first = clip.frame_offset + p.start
        last = clip.frame_offset + p.end
        row = [clip.video, str(p.person_id), str(first), str(last)]
        if split != "test":
            assert p.categories is not None and p.vad is not None
            row += [_fmt(v) for v in p.categories] + [_fmt(v) for v in p.vad]
            row += [str(p.gender), str(p.age), str(p.ethnicity), _fmt(p.confidence)]
        rows.append(row)
    return rows


def sidecar_dict(plan: SynthPlan) -> dict[str, Any]:
    """The ``synthetic_context.json`` content (format in docs/design.md)."""
    return {
        "version": 1,
        "scenes": {name: idx for name, (idx, _) in SCENES.items()},
        "objects": {name: COCO_CLASSES.index(name) for name in OBJECT_NAMES},
        "clips": {c.video: {"scene": c.scene, "objects": [o.name for o in c.objects]} for c in plan.clips},
    }


def _readme(plan: SynthPlan) -> str:
    cfg = plan.config
    counts = {s: len(plan.instances(s)) for s in SPLIT_FRACTIONS}
    return (
        "SYNTHETIC DATA - this is not BoLD and contains no real people.\n\n"
        f"Made by 'beenet synth' (beenet {__version__}, synthetic generator version {GENERATOR_VERSION}).\n"
        f"seed: {cfg.seed}\nclips: {cfg.num_clips}\nframe size: {cfg.width}x{cfg.height}\n"
        f"frames per clip: {cfg.min_frames}..{cfg.max_frames}\n"
        f"instances: train {counts['train']}, val {counts['val']}, test {counts['test']}\n\n"
        "The layout is that of the BoLD release (annotations/, videos/003/<id>.mp4/<NNNN>.mp4,\n"
        f"joints/003/<id>.mp4/<NNNN>.npy) plus {SIDECAR_NAME}, the scene and objects of each clip.\n"
        "The rules that make the scenes, bodies and labels are in docs/synthetic-data.md of the\n"
        "beenet source. The same seed and options give byte-identical annotations and joints.\n"
    )


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _looks_generated(path: Path) -> bool:
    return (path / SIDECAR_NAME).is_file() or (path / "README.txt").is_file() and \
        "beenet synth" in (path / "README.txt").read_text(errors="replace")


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a directory path for the synthetic dataset")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} is not empty; pass --overwrite to replace it, or choose "
                                    "another directory")
        if not _looks_generated(out):
            raise OutputExistsError(f"{out} is not empty and does not look like 'beenet synth' output "
                                    f"(no {SIDECAR_NAME}); refusing to delete it even with --overwrite. "
                                    "Remove it yourself or choose another directory")


@dataclass
class SynthResult:
    root: Path
    plan: SynthPlan
    seconds: float
    instances: dict[str, int]


def generate(out: str | Path, config: SynthConfig = SynthConfig(), *, overwrite: bool = False,
             workers: int | None = None, show_progress: bool | None = None) -> SynthResult:
    """Render and write the synthetic BoLD to ``out``.

    Everything is written to a hidden sibling directory that replaces ``out`` only when complete,
    so an interrupted run never leaves a dataset that looks whole. ``workers`` processes render
    the clips (default: up to 2, one per core); results do not depend on it.
    """
    t0 = time.perf_counter()
    out = Path(out).expanduser().absolute()
    _check_output(out, overwrite)
    plan = plan_dataset(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_dir(out, "partial")
    try:
        _render_all(tmp, plan, workers, show_progress)
        (tmp / SIDECAR_NAME).write_text(json.dumps(sidecar_dict(plan), indent=1) + "\n")
        (tmp / "README.txt").write_text(_readme(plan))
        ann = tmp / "annotations"  # last: a directory with annotations is a finished one
        ann.mkdir()
        _write_csv(ann / "train.csv", annotation_rows(plan, "train"))
        _write_csv(ann / "val.csv", annotation_rows(plan, "val"))
        _write_csv(ann / "test_meta.csv", annotation_rows(plan, "test"))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    counts = {s: len(plan.instances(s)) for s in SPLIT_FRACTIONS}
    log.debug("wrote %d synthetic clips (%s) to %s in %.1fs", len(plan.clips), counts, out, seconds)
    return SynthResult(out, plan, seconds, counts)


def _fresh_dir(out: Path, kind: str) -> Path:
    """A new hidden sibling of ``out`` (made with mkdir, so it gets the user's usual permissions)."""
    while True:
        path = out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        old = _fresh_dir(out, "old")
        os.replace(out, old / "data")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _render_all(root: Path, plan: SynthPlan, workers: int | None, show_progress: bool | None) -> None:
    cfg = plan.config
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    workers = max(1, min(workers, len(plan.clips)))
    bar = progress(total=len(plan.clips), desc="synth", unit="clip",
                   disable=None if show_progress is None else not show_progress)
    try:
        if workers == 1:
            for clip in plan.clips:
                _write_clip(str(root), clip, cfg.width, cfg.height)
                bar.update(1)
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_write_clip, str(root), clip, cfg.width, cfg.height) for clip in plan.clips]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        bar.close()


# ----------------------------------------------------------------------------------------------
# How much the context is needed: oracle upper bounds
# ----------------------------------------------------------------------------------------------

def _average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Step-wise AP (scikit-learn's definition, ties grouped); y bool, s scores."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tied block
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(s)
    npos, nneg = int(y.sum()), int((~y).sum())
    return float((r[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def _scores(y: np.ndarray, s: np.ndarray, vad: np.ndarray, vad_hat: np.ndarray) -> dict[str, float]:
    aps, aucs = [], []
    for k in range(y.shape[1]):
        if 0 < y[:, k].sum() < len(y):
            aps.append(_average_precision(y[:, k], s[:, k]))
            aucs.append(_roc_auc(y[:, k], s[:, k]))
    r2 = 1.0 - ((vad - vad_hat) ** 2).sum(0) / ((vad - vad.mean(0)) ** 2).sum(0)
    m_ap, m_ra, m_r2 = float(np.mean(aps)), float(np.mean(aucs)), float(np.mean(r2))
    return {"mAP": m_ap, "mRA": m_ra, "mR2": m_r2, "ERS": 0.5 * (m_r2 + 0.5 * (m_ap + m_ra))}


def expected_scores(archetype: str, scene: str, objects: list[str]) -> np.ndarray:
    """E[soft category scores | body archetype, scene, objects] under the generator's rules."""
    group = EMOTION_TABLE[archetype][scene]
    others = [g for g in _archetype_groups(archetype) if g != group]
    p_in = float(np.mean(VOTE_IN_GROUP))
    e = (1.0 - GROUP_CONFUSION) * _vote_probabilities(group, objects, p_in)
    for g in others:
        e += GROUP_CONFUSION / len(others) * _vote_probabilities(g, objects, p_in)
    return e


def group_accuracy_rules() -> dict[str, float]:
    """Exact Bayes-optimal accuracy of naming the group the annotators saw, under the rules' own
    distribution (label noise included): from the body archetype alone, and from body + scene."""
    cells = _cell_weights()
    body = 0.0
    for i, a in enumerate(ARCHETYPES):
        groups = _archetype_groups(a)
        others = max(1, len(groups) - 1)
        # P(perceived = g | a) for every group the archetype can express
        p = Counter()
        for j, s in enumerate(SCENE_NAMES):
            true = EMOTION_TABLE[a][s]
            for g in groups:
                p[g] += cells[i, j] * ((1.0 - GROUP_CONFUSION) if g == true else GROUP_CONFUSION / others)
        body += max(p.values())
    return {"body_only": float(body), "body_scene": 1.0 - GROUP_CONFUSION}


def oracle_report(plan: SynthPlan) -> dict[str, Any]:
    """How far a body-only model can go, and how far one that also sees the context can.

    * ``group_accuracy``: Bayes-optimal accuracy of naming the emotion group the annotators saw,
      from the body archetype alone vs from archetype + scene: exact under the rules
      (``rules``, see :func:`group_accuracy_rules`) and measured on this plan's instances;
    * ``ambiguous_fraction``: instances whose archetype maps to more than one group;
    * ``oracle``: BoLD scores (mAP, mRA, mR2, ERS on all instances, test included) of the
      generator's expected scores knowing body+scene+objects, vs knowing the body only
      (expected scores averaged over this plan's instances of the same archetype).
    """
    inst = plan.instances()
    if not inst:
        return {}
    cells = _cell_weights()
    best_body = {}
    for i, a in enumerate(ARCHETYPES):
        mass = Counter()
        for j, s in enumerate(SCENE_NAMES):
            mass[EMOTION_TABLE[a][s]] += cells[i, j]
        best_body[a] = mass.most_common(1)[0][0]

    y = np.array([p.categories for _, p in inst]) >= POSITIVE_THRESHOLD
    vad = np.array([p.vad for _, p in inst])
    ctx = np.array([expected_scores(p.archetype, c.scene, [o.name for o in c.objects]) for c, p in inst])
    arch = np.array([ARCHETYPES.index(p.archetype) for _, p in inst])
    body = np.zeros_like(ctx)
    for k in range(len(ARCHETYPES)):
        if (arch == k).any():
            body[arch == k] = ctx[arch == k].mean(axis=0)
    to_vad = lambda e: np.clip(VAD_CENTRE + VAD_GAIN * e @ _W_VAD, 1.0, 10.0)  # noqa: E731
    return {
        "instances": len(inst),
        "ambiguous_fraction": float(np.mean([len(_archetype_groups(p.archetype)) > 1 for _, p in inst])),
        "group_accuracy": {
            "body_only": float(np.mean([p.perceived == best_body[p.archetype] for _, p in inst])),
            "body_scene": float(np.mean([p.perceived == p.group for _, p in inst])),
            "rules": group_accuracy_rules(),
        },
        "oracle": {"body_context": _scores(y, ctx, vad, to_vad(ctx)), "body_only": _scores(y, body, vad, to_vad(body))},
        "positive_rate": {c: float(y[:, k].mean()) for k, c in enumerate(CATEGORIES)},
    }


def format_report(report: dict[str, Any]) -> str:
    """The oracle report as a few readable lines."""
    if not report:
        return "no annotated instances"
    g, o = report["group_accuracy"], report["oracle"]
    lines = [
        f"instances: {report['instances']}, ambiguous from the body alone: {report['ambiguous_fraction']:.0%}",
        f"emotion group, Bayes-optimal accuracy: body only {g['body_only']:.3f} "
        f"(rules: {g['rules']['body_only']:.3f}), body + scene {g['body_scene']:.3f} "
        f"(rules: {g['rules']['body_scene']:.3f})",
    ]
    for name, label in (("body_context", "body + context"), ("body_only", "body only")):
        s = o[name]
        lines.append(f"oracle, {label:<14}  mAP {s['mAP']:.3f}  mRA {s['mRA']:.3f}  "
                     f"mR2 {s['mR2']:.3f}  ERS {s['ERS']:.3f}")
    rates = report["positive_rate"]
    rare = min(rates, key=rates.get)
    lines.append(f"rarest category: {rare} ({rates[rare]:.1%} positive)")
    return "\n".join(lines)
