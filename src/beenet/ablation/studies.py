"""The studies: which variants each one trains, as config overrides on top of a base config.

A study is a builder in :data:`_BUILDERS` (``STUDIES`` is derived from it, never copied); each
variant changes one thing against the study's base config and lists the stress settings
(:class:`~beenet.ablation.stress.Stress`) it is also scored under. Axes that range over
a config field's choices read them off the owner: the pooling registry for sites a and b,
``ModelConfig.context_pool``'s ``Literal`` hint for site c.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from beenet.ablation.stress import STREAM_OF_PART, Stress
from beenet.choices import choices
from beenet.errors import ConfigError
from beenet.models import ModelConfig
from beenet.models.fusion import fusion_pools_contexts, fusion_uses_context
from beenet.models.pooling import POOL_KINDS
from beenet.run_config import RunConfig, apply_overrides, validate

log = logging.getLogger(__name__)

#: Site c's axis: every pooling over contexts the ``beenet`` fusion takes.
CONTEXT_POOL_SITE_C: tuple[str, ...] = choices(ModelConfig, "context_pool")


@dataclass(frozen=True)
class Variant:
    """One model variant: a name, what it changes against the study's base config, and the stress
    settings it is also scored under (``"none"`` = plain val), spelled as :class:`Stress` prints them."""

    name: str
    overrides: tuple[str, ...]
    description: str
    stresses: tuple[str, ...] = (str(Stress()),)


@dataclass
class Study:
    name: str
    base: RunConfig
    variants: list[Variant] = field(default_factory=list)
    baseline: str = ""


def pool_kinds() -> tuple[str, ...]:
    """Sites a and b's axis: every kind the pooling registry builds."""
    return tuple(POOL_KINDS)


def stresses_for(cfg: RunConfig) -> tuple[str, ...]:
    """Stress settings that mean something for ``cfg``: distractors always, context drops per part."""
    out = [Stress(), Stress("distractors", percent=25), Stress("distractors", percent=50)]
    if fusion_uses_context(cfg.model.fusion):
        out += [Stress("drop", part=part) for part, stream in STREAM_OF_PART.items() if getattr(cfg.model, stream)]
    return tuple(str(s) for s in out)


def _paper(st: Study) -> None:
    st.variants = [
        Variant("emotion", ("model.fusion=none", "model.place_stream=false", "model.object_stream=false"),
                "emotion stream only"),
        Variant("place", ("model.fusion=beenet", "model.place_stream=true", "model.object_stream=false"),
                "+ place context (beenet fusion)"),
        Variant("object", ("model.fusion=beenet", "model.place_stream=false", "model.object_stream=true"),
                "+ object context (beenet fusion)"),
        Variant("both-concat", ("model.fusion=concat", "model.place_stream=true", "model.object_stream=true"),
                "+ both, concatenation"),
        Variant("both-camode", ("model.fusion=camode", "model.place_stream=true", "model.object_stream=true"),
                "+ both, probabilistic pooling (CA-MoDE gate)"),
        Variant("both-camode-scaffold", ("model.fusion=camode-scaffold", "model.place_stream=true",
                                         "model.object_stream=true"),
                "+ both, the authors' scaffold's gate (one prior per category for every sample)"),
        Variant("both-beenet", ("model.fusion=beenet", "model.place_stream=true", "model.object_stream=true"),
                "+ both, probabilistic pooling (BEE-NET per-sample)"),
    ]
    st.baseline = "emotion"


def _streams(st: Study) -> None:
    st.variants = [
        Variant("frame", ("model.body_crop=none", "data.body_crop=false", "model.skeleton=false",
                          "data.skeleton=false"), "whole frame"),
        Variant("frame+crop", ("model.body_crop=shared", "data.body_crop=true", "model.skeleton=false",
                               "data.skeleton=false"), "+ body crop"),
        Variant("frame+skeleton", ("model.body_crop=none", "data.body_crop=false", "model.skeleton=true",
                                   "data.skeleton=true"), "+ skeleton (ST-GCN)"),
        Variant("all", ("model.body_crop=shared", "data.body_crop=true", "model.skeleton=true",
                        "data.skeleton=true"), "frame + crop + skeleton"),
    ]
    st.baseline = "frame"


def _pooling(st: Study) -> None:
    base = st.base
    stress = stresses_for(base)
    m = base.model
    st.variants = [Variant("baseline", (), f"base config (a={m.temporal_pool}, c={m.context_pool}"
                           + (f", b={m.skeleton_pool})" if m.skeleton else ")"), stress)]
    for kind in pool_kinds():
        if kind != m.temporal_pool:
            st.variants.append(Variant(f"a-{kind}", (f"model.temporal_pool={kind}",),
                                       f"site a (frames): {kind}", stress))
    if fusion_pools_contexts(base.model.fusion):
        for kind in CONTEXT_POOL_SITE_C:
            if kind != m.context_pool:
                st.variants.append(Variant(f"c-{kind}", (f"model.context_pool={kind}",),
                                           f"site c (contexts): {kind}", stress))
    else:
        log.info("pooling study: site c skipped (model.fusion=%s has no pooling over contexts)", m.fusion)
    if m.skeleton:
        for kind in pool_kinds():
            if kind != m.skeleton_pool:
                st.variants.append(Variant(f"b-{kind}", (f"model.skeleton_pool={kind}",),
                                           f"site b (joints x time): {kind}", stress))
    st.baseline = "baseline"
    if base.data.frames_per_sample == 1:
        log.warning("pooling study on still frames (T=1): site a pools a single frame; use a config "
                    "with data.sampling=uniform (e.g. --config video) to compare temporal poolings")


#: The distill study's axis: (name, loss.distill_norm, loss.distill_weight, what it is).
DISTILL_AXIS: tuple[tuple[str, str, float, str], ...] = (
    ("off", "classes", 0.0, "no distillation (the context streams learn nothing)"),
    ("nats", "none", 1.0, "KL in nats at weight 1 (older reading)"),
    ("log-classes", "log_classes", 1.0, "KL / log K at weight 1"),
    ("classes", "classes", 1.0, "KL / K (per-class mean) at weight 1"),
    ("classes-x10", "classes", 10.0, "KL / K at weight 10"),
)


def _distill(st: Study) -> None:
    """The scale of the context distillation (``docs/method.md`` section 4): its normalisation and
    weight, everything else as the base config (use a config with context streams)."""
    st.variants = [
        Variant(name, (f"loss.distill_norm={norm}", f"loss.distill_weight={weight}"), what)
        for name, norm, weight, what in DISTILL_AXIS
    ]
    st.baseline = "nats"
    m = st.base.model
    if m.fusion_context != "streams" or not (m.place_stream or m.object_stream):
        log.warning("distill study: the base config has no context streams (model.fusion_context=%s), "
                    "so nothing is distilled and every variant is the same model", m.fusion_context)


#: Study name -> the builder that fills in its variants and baseline.
_BUILDERS: dict[str, Callable[[Study], None]] = {
    "paper": _paper, "pooling": _pooling, "streams": _streams, "distill": _distill,
}
STUDIES: tuple[str, ...] = tuple(_BUILDERS)


def make_study(name: str, base: RunConfig) -> Study:
    """The variants of study ``name`` on top of ``base`` (one site / stream / context at a time)."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown study {name!r}; studies: {', '.join(STUDIES)}")
    st = Study(name=name, base=base)
    _BUILDERS[name](st)
    return st


def variant_config(study: Study, variant: Variant, seed: int) -> RunConfig:
    """``study.base`` with ``variant``'s overrides and ``run.seed=seed``, validated."""
    cfg = RunConfig.from_dict(study.base.to_dict())
    apply_overrides(cfg, list(variant.overrides) + [f"run.seed={seed}"])
    try:
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"ablation variant {variant.name!r} ({variant.description}): {exc}") from None
    return cfg
