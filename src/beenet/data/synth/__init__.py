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

One module per step, each importable on its own:

* :mod:`~beenet.data.synth.rules`: the tables above and the pure functions that read them;
* :mod:`~beenet.data.synth.plan`: :func:`plan_dataset` decides every clip, person, label and
  split (deterministic in the seed, no drawing);
* :mod:`~beenet.data.synth.poses` and :mod:`~beenet.data.synth.draw`: body poses and drawing;
* :mod:`~beenet.data.synth.render`: :func:`render_clip` draws one clip, frames and joints;
* :mod:`~beenet.data.synth.write`: :func:`generate` renders and writes the whole dataset;
* :mod:`~beenet.data.synth.oracle`: :func:`oracle_report` measures how much the context is
  needed (body-only vs body+context upper bounds, scored with :func:`beenet.metrics.bold_scores`).
"""

from __future__ import annotations

from beenet.data.synth.oracle import expected_scores, format_report, group_accuracy_rules, oracle_report
from beenet.data.synth.plan import (
    BOLD_SUBDIR,
    FRAME_RATES,
    SPLIT_FRACTIONS,
    ClipPlan,
    ObjectPlan,
    PersonPlan,
    SynthConfig,
    SynthPlan,
    plan_dataset,
)
from beenet.data.synth.poses import ARCHETYPES
from beenet.data.synth.render import render_clip
from beenet.data.synth.rules import (
    EMOTION_GROUPS,
    EMOTION_TABLE,
    GENERATOR_VERSION,
    OBJECT_MODIFIERS,
    OBJECT_NAMES,
    SCENE_NAMES,
    SCENE_OBJECTS,
    SCENES,
    VAD_WEIGHTS,
)
from beenet.data.synth.write import OutputExistsError, SynthResult, annotation_rows, generate, sidecar_dict

__all__ = [
    "ARCHETYPES", "BOLD_SUBDIR", "EMOTION_GROUPS", "EMOTION_TABLE", "FRAME_RATES", "GENERATOR_VERSION",
    "OBJECT_MODIFIERS", "OBJECT_NAMES", "SCENES", "SCENE_NAMES", "SCENE_OBJECTS", "SPLIT_FRACTIONS",
    "VAD_WEIGHTS", "ClipPlan", "ObjectPlan", "OutputExistsError", "PersonPlan", "SynthConfig",
    "SynthPlan", "SynthResult", "annotation_rows", "expected_scores", "format_report", "generate",
    "group_accuracy_rules", "oracle_report", "plan_dataset", "render_clip", "sidecar_dict",
]
