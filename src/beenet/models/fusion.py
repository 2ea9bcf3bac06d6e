"""The late fusions of context and emotion (the priors they read are in :mod:`beenet.models.priors`).

A fusion maps emotion features ``[B, D]`` and context probabilities ``c`` ``[B, J]`` to a dict
``category_logits`` ``[B, 26]``, ``categories`` ``[B, 26]``, ``vad_z`` ``[B, 3]`` (VAD in units of the
training standard deviation around the training mean: the model converts back to the BoLD scale):

- ``none``: the emotion stream alone (context ignored).
- ``concat``: ``linear([features ; c])``.
- ``camode``: the CA-MoDE gate, Q_i = sigmoid(alpha (p+_i - tau)), prior_i = Q_i p+_i + (1 - Q_i) p-_i,
  over two contexts (scene, object), each with its confidence c_k = max softmax probability
  (``camode_contexts="parts"``, the authors' scaffold), or with global priors p+-_i = max_j P+-_ij over
  the J per-class contexts (``"classes"``, the older reading).
- ``camode-scaffold``: the authors' scaffold's gate exactly: priors fitted over the two parts with
  their max-softmax confidence, one fused prior per category for every sample (c not read).
- ``beenet``: per sample, prior_i(x) = POOL_j [P+_ij c_j + P-_ij (1 - c_j)] (law of total probability
  per context, pooled over the contexts j); VAD alike with the conditional means (pooled by the
  context probabilities, ``vad_context_pool``), mixed with the emotion stream's VAD by a learned
  per-dimension gate.

For ``camode`` and ``beenet`` the fused score (``docs/method.md`` section 2.6.3, the paper's Eq. 16) is
y~_i = prior_i z_i / lambda on the raw linear output z (``form="linear"``, the authors' form),
prior_i sigmoid(z_i) / lambda (``form="scale"``, an older reading) or sigmoid(z_i + log(prior_i / lambda))
(``form="odds"``); ``category_logits`` is always the odds form's logit, the input of a BCE loss. The
plain fusions output z itself under ``linear`` and sigmoid(z) otherwise.

Each fusion class declares what it reads, so no caller matches fusion names: ``reads_context``
(the per-sample c_j), ``reads_priors`` (P+ / P-), ``reads_vad_priors`` (the VAD conditional means),
``pools_contexts`` (it pools over contexts with ``model.context_pool``), and from these
``uses_context`` (it needs context labels). The model makes exactly the priors a fusion reads
trainable. ``ModelConfig.fusion`` declares the names; each class registers under its name in the
table ``FUSIONS`` of :mod:`beenet.models.config` (a test checks that the two agree), and
:func:`~beenet.models.config.fusion_class` answers by name. The defaults of a fusion's settings are
``ModelConfig``'s (``FusionOptions`` and the constructors read them). To add a fusion: a
:class:`Fusion` subclass here with its declarations, ``@register_fusion(name)``, its ``build`` and
``forward``, its name in ``ModelConfig.fusion``; the tests in ``tests/test_fusion.py`` run over
every name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from beenet.choices import choices, not_one_of, upgrade_choice
from beenet.errors import BeenetError, ConfigError
from beenet.labels import NUM_CATEGORIES, NUM_VAD
from beenet.models.config import (
    FUSIONS,
    BEENetKind,
    CAMoDEKind,
    CAMoDEScaffoldKind,
    ConcatKind,
    FusionKind,
    NoFusionKind,
    ModelConfig,
    fusion_class,
    fusion_pools_contexts,
    fusion_reads_priors,
    fusion_uses_context,
    register_fusion,
)
from beenet.models.pooling import make_pool
from beenet.models.priors import ContextPriors

#: The names importable from here (the table and the ``fusion_*`` helpers live with the names they
#: answer for, in :mod:`beenet.models.config`; they are kept importable from this module).
__all__ = [
    "FUSIONS", "FUSION_KINDS", "BEENetFusion", "CAMoDEFusion", "CAMoDEScaffoldFusion", "ConcatFusion", "Fusion", "FusionOptions",
    "NoFusion", "build_fusion", "fusion_class", "fusion_pools_contexts", "fusion_reads_priors",
    "fusion_uses_context",
]

#: Smallest prior inside a log (odds form).
LOG_EPS = 1e-6


def _combine(logits: torch.Tensor, prior: torch.Tensor, lam: float, form: str) -> dict[str, torch.Tensor]:
    """Scale the emotion scores by prior / lambda (``docs/method.md`` section 2.6.3, Eq. 16).

    ``linear``: y~ = prior z / lambda on the raw linear output z (the authors' Eq. 16);
    ``scale``: prior sigmoid(z) / lambda (older reading); ``odds``: sigmoid(z + log(prior / lambda)).
    ``category_logits`` is the odds form's logit for every form (what a BCE loss trains).
    """
    category_logits = logits + torch.log(prior.clamp_min(LOG_EPS) / lam)
    if form == "linear":
        categories = prior * logits / lam
    elif form == "scale":
        categories = prior * torch.sigmoid(logits) / lam
    else:
        categories = torch.sigmoid(category_logits)
    return {"category_logits": category_logits, "categories": categories}


def _plain_scores(logits: torch.Tensor, form: str) -> torch.Tensor:
    """The score of a fusion without priors: z itself under the ``linear`` form (the authors' linear
    emotion head), sigmoid(z) under ``scale`` and ``odds`` (the same ranking either way)."""
    return logits if form == "linear" else torch.sigmoid(logits)


@dataclass(frozen=True)
class FusionOptions:
    """The ``ModelConfig`` values a fusion may read (each class takes the ones it needs); the
    defaults are ``ModelConfig``'s, their one owner."""

    context_pool: str = ModelConfig.context_pool
    lam: float = ModelConfig.prior_lambda
    alpha: float = ModelConfig.gate_alpha
    tau: float = ModelConfig.gate_tau
    form: str = ModelConfig.fusion_form
    #: ``camode``: ``parts`` (one context per part, scene / object) or ``classes`` (J per-class contexts).
    camode_contexts: str = ModelConfig.camode_contexts
    #: ``beenet``: how the VAD from context is pooled over contexts (``probability``, ``mean``,
    #: ``context_pool``).
    vad_context_pool: str = ModelConfig.vad_context_pool
    #: Widths of the context parts in the order of c (365 places, 80 objects); () = one part of J.
    parts: tuple[int, ...] = ()

    @classmethod
    def from_config(cls, cfg: ModelConfig, parts: tuple[int, ...] = ()) -> FusionOptions:
        """The options of the fusion that ``cfg`` describes, with the context parts' widths."""
        return cls(context_pool=cfg.context_pool, lam=cfg.prior_lambda, alpha=cfg.gate_alpha, tau=cfg.gate_tau,
                   form=cfg.fusion_form, camode_contexts=cfg.camode_contexts,
                   vad_context_pool=cfg.vad_context_pool, parts=tuple(parts))


class Fusion(FusionKind, nn.Module):
    """Base of the fusions: ``forward(features [B, D], context [B, J] | None, priors) -> dict``.

    What a subclass reads is declared by its name's :class:`~beenet.models.config.FusionKind`
    (its first base); the model and the ablation ask these, never the name.
    """

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> Fusion:
        """The fusion for emotion features of width ``dim`` and ``num_contexts`` contexts."""
        raise NotImplementedError  # pragma: no cover - every fusion defines it

    def forward(  # pragma: no cover - every fusion defines it
        self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError


@register_fusion("none")
class NoFusion(NoFusionKind, Fusion):
    """The emotion stream alone: ``linear(features)`` -> 26 logits + 3 standardised VAD."""

    def __init__(self, dim: int, form: str = ModelConfig.fusion_form) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, NUM_CATEGORIES + NUM_VAD)
        self.form = form

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> NoFusion:
        return cls(dim, form=options.form)

    def forward(self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors) -> dict[str, torch.Tensor]:
        out = self.classifier(features)
        logits = out[:, :NUM_CATEGORIES]
        return {"category_logits": logits, "categories": _plain_scores(logits, self.form),
                "vad_z": out[:, NUM_CATEGORIES:]}


@register_fusion("concat")
class ConcatFusion(ConcatKind, Fusion):
    """Plain fusion: context probabilities concatenated with the emotion features, then linear."""


    def __init__(self, dim: int, num_contexts: int, form: str = ModelConfig.fusion_form) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim + num_contexts, NUM_CATEGORIES + NUM_VAD)
        self.form = form

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> ConcatFusion:
        return cls(dim, num_contexts, form=options.form)

    def forward(self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors) -> dict[str, torch.Tensor]:
        if context is None:
            raise BeenetError("concat fusion needs context probabilities")
        out = self.classifier(torch.cat([features, context.to(features.dtype)], dim=1))
        logits = out[:, :NUM_CATEGORIES]
        return {"category_logits": logits, "categories": _plain_scores(logits, self.form),
                "vad_z": out[:, NUM_CATEGORIES:]}


@register_fusion("camode")
class CAMoDEFusion(CAMoDEKind, Fusion):
    """The CA-MoDE gate (``docs/method.md`` section 2.6.1); VAD from the stream.

    ``contexts="parts"`` (the authors' scaffold): each context part k (scene, object) is one
    context with confidence c_k(x) = max_j c_j(x) over the part and class j*_k(x) = its argmax;
    p+-_ik = c_k P+-_{i j*_k} + (1 - c_k) P(B_i) (an unsure context falls back to the marginal),
    p+-_i = max_k p+-_ik. ``contexts="classes"`` (older reading): the priors are global per emotion,
    p+-_i = max_j P+-_ij over the J per-class contexts, the same for every sample (c is not read).
    Then Q_i = sigmoid(alpha (p+_i - tau)), p^_i = Q_i p+_i + (1 - Q_i) p-_i, and Eq. 16.
    """

    #: Reads c_j with ``camode_contexts="parts"`` (the default); ``"classes"`` ignores it.

    def __init__(
        self, dim: int, lam: float = ModelConfig.prior_lambda, alpha: float = ModelConfig.gate_alpha,
        tau: float = ModelConfig.gate_tau, form: str = ModelConfig.fusion_form,
        contexts: str = ModelConfig.camode_contexts, parts: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, NUM_CATEGORIES + NUM_VAD)
        self.lam, self.alpha, self.tau, self.form = float(lam), float(alpha), float(tau), form
        self.contexts = contexts
        self.parts = tuple(int(p) for p in parts)

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> CAMoDEFusion:
        parts = options.parts or (num_contexts,)
        if sum(parts) != num_contexts:
            raise ConfigError(f"camode fusion: context parts {parts} do not add up to {num_contexts} contexts")
        return cls(dim, lam=options.lam, alpha=options.alpha, tau=options.tau, form=options.form,
                   contexts=options.camode_contexts, parts=parts)

    def _gate(self, p_pos: torch.Tensor, p_neg: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.alpha * (p_pos - self.tau))
        return gate * p_pos + (1.0 - gate) * p_neg

    def prior(self, priors: ContextPriors, context: torch.Tensor | None = None) -> torch.Tensor:
        """p^: ``[26]`` with ``contexts="classes"``; ``[B, 26]`` with ``"parts"`` (reads ``context``)."""
        if self.contexts == "classes":
            return self._gate(priors.positive().amax(dim=1), priors.negative().amax(dim=1))
        if context is None:
            raise BeenetError("camode fusion (camode_contexts=parts) needs context probabilities")
        context = context.float()
        pos, neg, marginal = priors.positive(), priors.negative(), priors.p_b.to(context.dtype)
        per_part_pos, per_part_neg = [], []
        start = 0
        for width in self.parts or (context.shape[1],):
            c_part = context[:, start:start + width]
            conf, idx = c_part.max(dim=1)  # [B]: the part's confidence and its most probable class
            conf = conf.unsqueeze(1)
            p_pos = pos[:, start:start + width].T[idx]  # [B, 26]
            p_neg = neg[:, start:start + width].T[idx]
            per_part_pos.append(conf * p_pos + (1.0 - conf) * marginal)
            per_part_neg.append(conf * p_neg + (1.0 - conf) * marginal)
            start += width
        return self._gate(torch.stack(per_part_pos).amax(dim=0), torch.stack(per_part_neg).amax(dim=0))

    def forward(self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors) -> dict[str, torch.Tensor]:
        out = self.classifier(features)
        prior = self.prior(priors, context)
        if prior.ndim == 1:
            prior = prior.unsqueeze(0)
        result = _combine(out[:, :NUM_CATEGORIES], prior, self.lam, self.form)
        result["vad_z"] = out[:, NUM_CATEGORIES:]
        return result

    def extra_repr(self) -> str:
        return (f"lambda={self.lam}, alpha={self.alpha}, tau={self.tau}, form={self.form!r}, "
                f"contexts={self.contexts!r}, parts={self.parts}")


@register_fusion("beenet")
class BEENetFusion(BEENetKind, Fusion):
    """Per-sample probabilistic pooling over contexts (BEE-NET, our reading; see the module doc)."""


    def __init__(
        self, dim: int, pool: str = ModelConfig.context_pool, lam: float = ModelConfig.prior_lambda,
        form: str = ModelConfig.fusion_form, vad_pool: str = ModelConfig.vad_context_pool,
    ) -> None:
        super().__init__()
        valid = choices(ModelConfig, "context_pool")
        pool = upgrade_choice(ModelConfig, "context_pool", pool, "model.context_pool")
        if pool not in valid:
            raise not_one_of("model.context_pool", pool, valid)
        self.classifier = nn.Linear(dim, NUM_CATEGORIES + NUM_VAD)
        vad_valid = choices(ModelConfig, "vad_context_pool")
        if vad_pool not in vad_valid:
            raise not_one_of("model.vad_context_pool", vad_pool, vad_valid)
        self.category_pool = make_pool(pool, NUM_CATEGORIES)
        #: ``model.vad_context_pool``; the module ``vad_pool`` exists (and is in the state dict) only
        #: with ``context_pool``, the older reading that pools VAD like the categories.
        self.vad_pool_kind = vad_pool
        self.vad_pool = make_pool(pool, NUM_VAD) if vad_pool == "context_pool" else None
        #: Per VAD dimension, sigmoid(vad_gate) is the weight of the emotion stream (0.5 at init).
        self.vad_gate = nn.Parameter(torch.zeros(NUM_VAD))
        self.lam, self.form = float(lam), form

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> BEENetFusion:
        return cls(dim, pool=options.context_pool, lam=options.lam, form=options.form,
                   vad_pool=options.vad_context_pool)

    def prior(self, context: torch.Tensor, priors: ContextPriors) -> torch.Tensor:
        """prior_i(x) ``[B, 26]`` = POOL_j [P+_ij c_j + P-_ij (1 - c_j)]."""
        c = context.unsqueeze(-1)  # [B, J, 1]
        per_context = c * priors.positive().T + (1.0 - c) * priors.negative().T  # [B, J, 26]
        return self.category_pool(per_context, None)

    def context_vad(self, context: torch.Tensor, priors: ContextPriors) -> torch.Tensor:
        """VAD ``[B, 3]`` in standardised units (``docs/method.md`` section 2.7) from the per-context
        terms t_j = E[v|A_j] c_j + E[v|not A_j] (1 - c_j), pooled over j by ``vad_context_pool``:
        ``probability``: sum_j c_j t_j / sum_j c_j (weighted by the context probabilities);
        ``mean``: the plain mean; ``context_pool``: the categories' POOL (max in the older reading,
        which biases VAD upward). Pooled on the raw scale, then standardised.
        """
        c = context.unsqueeze(-1)
        per_context = c * priors.vad_pos.T + (1.0 - c) * priors.vad_neg.T  # [B, J, 3]
        if self.vad_pool is not None:
            pooled = self.vad_pool(per_context, None)
        elif self.vad_pool_kind == "mean":
            pooled = per_context.mean(dim=1)
        else:
            weight = c / c.sum(dim=1, keepdim=True).clamp_min(LOG_EPS)  # [B, J, 1]
            pooled = (weight * per_context).sum(dim=1)
        return (pooled - priors.vad_mean) / priors.vad_std

    def forward(self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors) -> dict[str, torch.Tensor]:
        if context is None:
            raise BeenetError("beenet fusion needs context probabilities")
        context = context.float()  # the prior arithmetic stays in float32 under autocast
        out = self.classifier(features)
        result = _combine(out[:, :NUM_CATEGORIES], self.prior(context, priors), self.lam, self.form)
        gate = torch.sigmoid(self.vad_gate)
        result["vad_z"] = gate * out[:, NUM_CATEGORIES:] + (1.0 - gate) * self.context_vad(context, priors)
        return result

    def extra_repr(self) -> str:
        return f"lambda={self.lam}, form={self.form!r}, vad_pool={self.vad_pool_kind!r}"




@register_fusion("camode-scaffold")
class CAMoDEScaffoldFusion(CAMoDEScaffoldKind, Fusion):
    """The authors' scaffold's gate exactly (``docs/method.md`` section 2.6.1): one fused prior per
    category, the same for every sample.

    The priors are fitted over two contexts, scene and object, each with the expert's confidence
    c_k = max softmax probability of the part (``priors_per_part``): P+_ik = m(y_i c_k) / m(c_k),
    P-_ik = (m(y_i) - m(y_i c_k)) / (1 - m(c_k)). Then p+-_i = max_k P+-_ik, Q_i = sigmoid(alpha
    (p+_i - tau)), p^_i = Q_i p+_i + (1 - Q_i) p-_i and Eq. 16. c is not read at run time, so at test
    time the prior cannot change a ranking within a category: context acts only through training.
    VAD comes from the classifier (the scaffold's VAD priors clamp to about 1, a constant gain of
    about 1 / lambda that the linear layer absorbs; beenet keeps VAD in standardised units).
    """

    def __init__(self, dim: int, lam: float = ModelConfig.prior_lambda, alpha: float = ModelConfig.gate_alpha,
                 tau: float = ModelConfig.gate_tau, form: str = ModelConfig.fusion_form) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, NUM_CATEGORIES + NUM_VAD)
        self.lam, self.alpha, self.tau, self.form = float(lam), float(alpha), float(tau), form

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> CAMoDEScaffoldFusion:
        return cls(dim, lam=options.lam, alpha=options.alpha, tau=options.tau, form=options.form)

    def prior(self, priors: ContextPriors) -> torch.Tensor:
        """p^ ``[26]``: the gate over the max of P+ and of P- over the parts."""
        p_pos, p_neg = priors.positive().amax(dim=1), priors.negative().amax(dim=1)
        gate = torch.sigmoid(self.alpha * (p_pos - self.tau))
        return gate * p_pos + (1.0 - gate) * p_neg

    def forward(self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors) -> dict[str, torch.Tensor]:
        out = self.classifier(features)
        result = _combine(out[:, :NUM_CATEGORIES], self.prior(priors).unsqueeze(0), self.lam, self.form)
        result["vad_z"] = out[:, NUM_CATEGORIES:]
        return result

    def extra_repr(self) -> str:
        return f"lambda={self.lam}, alpha={self.alpha}, tau={self.tau}, form={self.form!r}"


# ------------------------------------------------------------------------------------ factory

#: Every fusion name ``build_fusion`` builds (the keys of ``FUSIONS``, every class registered above).
FUSION_KINDS: tuple[str, ...] = tuple(FUSIONS)


def build_fusion(
    kind: str, dim: int, num_contexts: int, options: FusionOptions | None = None, **settings: Any
) -> Fusion:
    """The fusion ``ModelConfig.fusion`` names, for emotion features of width ``dim``, with ``options``
    (:meth:`FusionOptions.from_config`) or the ``FusionOptions`` fields given by name (``lam=0.5``;
    the others keep ``ModelConfig``'s defaults). ``parts`` are the widths of the context parts in c
    (e.g. (365, 80)), one part of ``num_contexts`` by default."""
    cls = fusion_class(kind)
    if cls.uses_context and num_contexts < 1:
        raise ConfigError(f"model.fusion={kind!r} needs at least one context (place or object stream)")
    if "parts" in settings:
        settings["parts"] = tuple(settings["parts"])
    options = FusionOptions(**settings) if options is None else dataclasses.replace(options, **settings)
    return cls.build(dim, num_contexts, options)
