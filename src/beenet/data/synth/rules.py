"""The rules of the synthetic BoLD: which scene, objects and body make which emotion.

* each clip has a *scene* (:data:`SCENES`, each a Places365 class) and a few *objects*
  (:data:`SCENE_OBJECTS`, COCO classes);
* each annotated person moves in one of the body archetypes (:data:`~beenet.data.synth.poses.ARCHETYPES`);
* an archetype is ambiguous: the scene decides which *emotion group* it expresses
  (:data:`EMOTION_TABLE`); some objects add one category of their own (:data:`OBJECT_MODIFIERS`);
* simulated annotators vote per category (:func:`vote_probabilities`, with label noise); the soft
  score is the fraction of votes; VAD is a noisy linear function of the scores (:func:`vad_from_scores`).

Only tables and the pure functions that read them live here; :mod:`~beenet.data.synth.plan` draws
from them and :mod:`~beenet.data.synth.oracle` computes their expectations. The tables are
checked against each other and against :data:`beenet.labels.CATEGORIES` on import.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from beenet.data.synth.poses import ARCHETYPES
from beenet.labels import CATEGORIES, COCO_CLASSES, NUM_CATEGORIES

#: Bump when the rules or the layout change, so that old synthetic sets can be told apart.
GENERATOR_VERSION = 1

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

CAT_INDEX: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
_W_VAD = np.array([VAD_WEIGHTS[c] for c in CATEGORIES], dtype=np.float64)  # [26, 3]


def vad_from_scores(scores: np.ndarray) -> np.ndarray:
    """``VAD_CENTRE + VAD_GAIN * scores @ W``: the VAD of soft category scores ``[..., 26]``,
    before the annotators' noise and the clipping to 1..10."""
    return VAD_CENTRE + VAD_GAIN * scores @ _W_VAD


def cell_weights() -> np.ndarray:
    """P(archetype, scene) [A, S]: every emotion group equally likely, cells within a group alike,
    so that every category is positive in several percent of instances."""
    w = np.zeros((len(ARCHETYPES), len(SCENE_NAMES)))
    count = Counter(EMOTION_TABLE[a][s] for a in ARCHETYPES for s in SCENE_NAMES)
    for i, a in enumerate(ARCHETYPES):
        for j, s in enumerate(SCENE_NAMES):
            w[i, j] = 1.0 / count[EMOTION_TABLE[a][s]]
    return w / w.sum()


def vote_probabilities(group: str, objects: list[str], p_in: float) -> np.ndarray:
    """Per-category probability that one annotator ticks it, given the perceived group."""
    p = np.full(NUM_CATEGORIES, VOTE_BACKGROUND)
    mod = np.zeros(NUM_CATEGORIES, dtype=bool)
    for o in objects:
        if o in OBJECT_MODIFIERS:
            mod[CAT_INDEX[OBJECT_MODIFIERS[o]]] = True
    p[mod] = VOTE_MODIFIER
    for c in EMOTION_GROUPS[group]:
        k = CAT_INDEX[c]
        p[k] = 1.0 - (1.0 - p_in) * (1.0 - VOTE_MODIFIER) if mod[k] else p_in
    return p


def archetype_groups(archetype: str) -> list[str]:
    """The emotion groups an archetype can express (over all scenes), sorted."""
    return sorted(set(EMOTION_TABLE[archetype].values()))


def _check_tables() -> None:
    for g, cats in EMOTION_GROUPS.items():
        bad = [c for c in cats if c not in CAT_INDEX]
        assert not bad, f"group {g}: unknown categories {bad}"
    assert set(EMOTION_TABLE) == set(ARCHETYPES)
    for a, row in EMOTION_TABLE.items():
        assert set(row) == set(SCENES) and set(row.values()) <= set(EMOTION_GROUPS), a
    covered = {c for cats in EMOTION_GROUPS.values() for c in cats}
    assert covered == set(CATEGORIES), f"categories no group expresses: {set(CATEGORIES) - covered}"
    assert all(c in CAT_INDEX for c in OBJECT_MODIFIERS.values())


_check_tables()
