"""Context priors fitted by Bayes' rule, and the late fusions of context and emotion.

``ContextPriors`` holds what ``docs/method.md`` section 2 fits once on the training split:
P+_ij = P(B_i | A_j), P-_ij = P(B_i | not A_j), P(B_i), P(A_j), the VAD conditional means
E[v | A_j], E[v | not A_j] and the VAD mean / std. They are buffers (parameters when trainable) of
the model, so they travel inside its state dict; before fitting they are neutral (0.5).

A fusion maps emotion features ``[B, D]`` and context probabilities ``c`` ``[B, J]`` to a dict
``category_logits`` ``[B, 26]``, ``categories`` ``[B, 26]``, ``vad_z`` ``[B, 3]`` (VAD in units of the
training standard deviation around the training mean: the model converts back to the BoLD scale):

- ``none``: the emotion stream alone (context ignored).
- ``concat``: ``linear([features ; c])``.
- ``camode``: the CA-MoDE gate, Q_i = sigmoid(alpha (p+_i - tau)), prior_i = Q_i p+_i + (1 - Q_i) p-_i,
  over two contexts (scene, object), each with its confidence c_k = max softmax probability
  (``camode_contexts="parts"``, the authors' scaffold), or with global priors p+-_i = max_j P+-_ij over
  the J per-class contexts (``"classes"``, the older reading).
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
(the per-sample c_j), ``reads_priors`` (P+ / P-), ``reads_vad_priors`` (the VAD conditional means)
and ``pools_contexts`` (it pools over contexts with ``model.context_pool``). The model makes exactly
the priors a fusion reads trainable; a fusion that reads context or priors needs context labels.
The fusion names are derived from the constructor table ``FUSIONS`` (a test checks that
``ModelConfig.fusion`` allows the same names); :func:`fusion_class` and the ``fusion_*`` helpers
answer by name. To add a fusion: a :class:`Fusion` subclass here with its declarations, its
``build`` and ``forward``, an entry in ``FUSIONS``, its name in ``ModelConfig.fusion``; the tests
in ``tests/test_fusion.py`` run over every name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from beenet.choices import choices, not_one_of, upgrade_choice
from beenet.errors import BeenetError, ConfigError
from beenet.labels import NUM_CATEGORIES, NUM_VAD
from beenet.models.pooling import make_pool

log = logging.getLogger(__name__)

#: Value of every probability prior before fitting: no context is informative yet.
NEUTRAL_PRIOR = 0.5
#: VAD mean before fitting: the middle of BoLD's 1..10 scale (std 1 until fitted).
NEUTRAL_VAD_MEAN = 5.5
#: Denominators at or below this are "no evidence": the conditional falls back to the marginal.
GUARD_EPS = 1e-6
#: Smallest prior inside a log (odds form).
LOG_EPS = 1e-6


def _as_float64(x: torch.Tensor | np.ndarray, name: str, width: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x.detach().cpu()).to(torch.float64)
    if t.ndim != 2 or t.shape[1] != width:
        raise BeenetError(f"fit_priors: {name} must have shape [N, {width}], got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        row = int((~torch.isfinite(t)).any(dim=1).nonzero()[0, 0])
        raise BeenetError(f"fit_priors: {name} row {row} holds NaN or inf; clean the labels before fitting")
    return t


class ContextPriors(nn.Module):
    """Priors of J contexts for the 26 categories and the 3 VAD dimensions (fitted by :meth:`fit`).

    ``trainable=True`` makes P+ and P- parameters, initialised from the fitted values (clamped to
    [0, 1] when read), and the VAD conditional means too unless ``trainable_vad=False`` (a fusion
    that does not read them must not hold parameters without gradients: DDP rejects those);
    everything else stays a buffer. The state-dict keys are the same either way.
    """

    def __init__(
        self, num_contexts: int, trainable: bool = False, trainable_vad: bool | None = None,
        pseudocount: float = 0.0,
    ) -> None:
        super().__init__()
        J, K, V = num_contexts, NUM_CATEGORIES, NUM_VAD
        if not pseudocount >= 0:
            raise BeenetError(f"ContextPriors: pseudocount must be >= 0, got {pseudocount!r}")
        self.num_contexts = J
        self.trainable = trainable
        #: m of the shrinkage toward the marginal (``model.prior_pseudocount``; 0 = plain Bayes ratios).
        self.pseudocount = float(pseudocount)
        trainable_vad = trainable if trainable_vad is None else trainable_vad

        def add(name: str, value: torch.Tensor, learn: bool) -> None:
            if learn:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

        add("p_pos", torch.full((K, J), NEUTRAL_PRIOR), trainable)
        add("p_neg", torch.full((K, J), NEUTRAL_PRIOR), trainable)
        add("vad_pos", torch.full((V, J), NEUTRAL_VAD_MEAN), trainable_vad)
        add("vad_neg", torch.full((V, J), NEUTRAL_VAD_MEAN), trainable_vad)
        self.register_buffer("p_b", torch.full((K,), NEUTRAL_PRIOR))
        self.register_buffer("p_a", torch.full((J,), NEUTRAL_PRIOR))
        self.register_buffer("vad_mean", torch.full((V,), NEUTRAL_VAD_MEAN))
        self.register_buffer("vad_std", torch.ones(V))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def positive(self) -> torch.Tensor:
        """P+ ``[26, J]`` in [0, 1] ("available" context)."""
        return self.p_pos.clamp(0.0, 1.0)

    def negative(self) -> torch.Tensor:
        """P- ``[26, J]`` in [0, 1] ("anticipated non-available" context)."""
        return self.p_neg.clamp(0.0, 1.0)

    @torch.no_grad()
    def fit(
        self,
        context: torch.Tensor | np.ndarray | None,
        categories: torch.Tensor | np.ndarray,
        vad: torch.Tensor | np.ndarray,
    ) -> None:
        """Fit every prior on the training split by Bayes' rule (``docs/method.md`` section 2).

        ``context`` ``[N, J]`` holds c_j in [0, 1]; ``categories`` ``[N, 26]`` the **soft** scores
        (soft targets keep the crowd's uncertainty and are what the MSE is trained on; a positive
        rate would throw away the votes); ``vad`` ``[N, 3]`` raw BoLD scale. With m the mean over
        the N samples: P(B_i) = m(y_i), P(A_j) = m(c_j), P(B_i, A_j) = m(y_i c_j),
        P+ = P(B, A) / P(A), P- = (P(B) - P(B, A)) / (1 - P(A)), clamped to [0, 1];
        E[v | A_j] = m(v c_j) / P(A_j), E[v | not A_j] = m(v (1 - c_j)) / (1 - P(A_j)).
        A context never seen (P(A) <= 1e-6) or always seen (1 - P(A) <= 1e-6) carries no
        evidence for that side: the conditional falls back to the marginal P(B_i) (or the VAD mean).

        With a pseudo-count m > 0 (``model.prior_pseudocount``, ``docs/method.md`` section 2.5) each
        conditional is shrunk toward the marginal as if m extra samples at the marginal had been
        seen on that side: P+ = (N P(B, A) + m P(B)) / (N P(A) + m), P- alike with (1 - c), and the
        VAD conditional means alike. A context seen in one or two clips then stays near P(B).
        """
        y = _as_float64(categories, "categories", NUM_CATEGORIES)
        v = _as_float64(vad, "vad", NUM_VAD)
        n = y.shape[0]
        if n == 0:
            raise BeenetError("fit_priors: no training samples were given; the priors need the training split")
        if self.num_contexts == 0:
            c = torch.zeros(n, 0, dtype=torch.float64)
        elif context is None:
            raise BeenetError(f"fit_priors: the model fuses {self.num_contexts} contexts but no context labels were given")
        else:
            c = _as_float64(context, "context", self.num_contexts)
        if c.shape[0] != n or v.shape[0] != n:
            raise BeenetError(
                f"fit_priors: context ({c.shape[0]} rows), categories ({n}) and vad ({v.shape[0]}) must have one row per sample"
            )
        if c.numel() and (c.min() < 0 or c.max() > 1):
            raise BeenetError(
                f"fit_priors: context probabilities must lie in [0, 1], got values in [{float(c.min()):.4g}, {float(c.max()):.4g}]"
            )

        p_b = y.mean(0)  # [26]
        p_a = c.mean(0)  # [J]
        p_ba = y.T @ c / n  # [26, J]
        has_a = p_a > GUARD_EPS
        has_not_a = (1.0 - p_a) > GUARD_EPS
        marginal = p_b[:, None].expand_as(p_ba)
        # m / N: the pseudo-count as a fraction of the N samples (0 = the plain Bayes ratios).
        w = self.pseudocount / n
        p_pos = torch.where(has_a, (p_ba + w * marginal) / (p_a + w).clamp_min(GUARD_EPS), marginal).clamp(0, 1)
        p_neg = torch.where(
            has_not_a, (p_b[:, None] - p_ba + w * marginal) / (1.0 - p_a + w).clamp_min(GUARD_EPS), marginal
        ).clamp(0, 1)

        v_mean = v.mean(0)  # [3]
        v_std = v.std(0, unbiased=False)
        v_std = torch.where(v_std > GUARD_EPS, v_std, torch.ones_like(v_std))
        v_marginal = v_mean[:, None].expand(NUM_VAD, self.num_contexts)
        vad_pos = torch.where(has_a, (v.T @ c / n + w * v_marginal) / (p_a + w).clamp_min(GUARD_EPS), v_marginal)
        vad_neg = torch.where(
            has_not_a, (v.T @ (1.0 - c) / n + w * v_marginal) / (1.0 - p_a + w).clamp_min(GUARD_EPS), v_marginal
        )

        for name, value in (
            ("p_pos", p_pos), ("p_neg", p_neg), ("vad_pos", vad_pos), ("vad_neg", vad_neg),
            ("p_b", p_b), ("p_a", p_a), ("vad_mean", v_mean), ("vad_std", v_std),
        ):
            target = getattr(self, name)
            target.copy_(value.to(dtype=target.dtype, device=target.device))
        self.fitted.fill_(True)
        log.info("fitted context priors on %d samples and %d contexts", n, self.num_contexts)

    def extra_repr(self) -> str:
        return f"num_contexts={self.num_contexts}, trainable={self.trainable}, pseudocount={self.pseudocount}"


# --------------------------------------------------------------------------- fusions


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
    """The ``ModelConfig`` values a fusion may read (each class takes the ones it needs)."""

    context_pool: str = "max"
    lam: float = 0.2
    alpha: float = 10.0
    tau: float = 0.5
    form: str = "linear"
    #: ``camode``: ``parts`` (one context per part, scene / object) or ``classes`` (J per-class contexts).
    camode_contexts: str = "parts"
    #: ``beenet``: how the VAD from context is pooled over contexts (``probability``, ``mean``,
    #: ``context_pool``).
    vad_context_pool: str = "probability"
    #: Widths of the context parts in the order of c (365 places, 80 objects); () = one part of J.
    parts: tuple[int, ...] = ()


class Fusion(nn.Module):
    """Base of the fusions: ``forward(features [B, D], context [B, J] | None, priors) -> dict``.

    A subclass declares what it reads; the model and the ablation ask these, never the name.
    """

    #: Reads the per-sample context probabilities c_j (``context`` of ``forward``).
    reads_context: ClassVar[bool] = False
    #: Reads the fitted category priors P+ / P- (``model.trainable_priors`` makes them parameters).
    reads_priors: ClassVar[bool] = False
    #: Reads the fitted VAD conditional means E[v | A_j], E[v | not A_j] (trainable alike).
    reads_vad_priors: ClassVar[bool] = False
    #: Pools over the contexts j with ``model.context_pool`` (site c of the pooling study).
    pools_contexts: ClassVar[bool] = False

    @classmethod
    def build(cls, dim: int, num_contexts: int, options: FusionOptions) -> Fusion:
        """The fusion for emotion features of width ``dim`` and ``num_contexts`` contexts."""
        raise NotImplementedError  # pragma: no cover - every fusion defines it

    def forward(  # pragma: no cover - every fusion defines it
        self, features: torch.Tensor, context: torch.Tensor | None, priors: ContextPriors
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class NoFusion(Fusion):
    """The emotion stream alone: ``linear(features)`` -> 26 logits + 3 standardised VAD."""

    def __init__(self, dim: int, form: str = "linear") -> None:
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


class ConcatFusion(Fusion):
    """Plain fusion: context probabilities concatenated with the emotion features, then linear."""

    reads_context = True

    def __init__(self, dim: int, num_contexts: int, form: str = "linear") -> None:
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


class CAMoDEFusion(Fusion):
    """The CA-MoDE gate (``docs/method.md`` section 2.6.1); VAD from the stream.

    ``contexts="parts"`` (the authors' scaffold): each context part k (scene, object) is one
    context with confidence c_k(x) = max_j c_j(x) over the part and class j*_k(x) = its argmax;
    p+-_ik = c_k P+-_{i j*_k} + (1 - c_k) P(B_i) (an unsure context falls back to the marginal),
    p+-_i = max_k p+-_ik. ``contexts="classes"`` (older reading): the priors are global per emotion,
    p+-_i = max_j P+-_ij over the J per-class contexts, the same for every sample (c is not read).
    Then Q_i = sigmoid(alpha (p+_i - tau)), p^_i = Q_i p+_i + (1 - Q_i) p-_i, and Eq. 16.
    """

    #: Reads c_j with ``camode_contexts="parts"`` (the default); ``"classes"`` ignores it.
    reads_context = True
    reads_priors = True

    def __init__(
        self, dim: int, lam: float = 0.2, alpha: float = 10.0, tau: float = 0.5, form: str = "linear",
        contexts: str = "parts", parts: tuple[int, ...] = (),
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


class BEENetFusion(Fusion):
    """Per-sample probabilistic pooling over contexts (BEE-NET, our reading; see the module doc)."""

    reads_context = True
    reads_priors = True
    reads_vad_priors = True
    pools_contexts = True

    def __init__(
        self, dim: int, pool: str = "max", lam: float = 0.2, form: str = "linear",
        vad_pool: str = "probability",
    ) -> None:
        super().__init__()
        from beenet.models.config import ModelConfig  # the owner of the choices (it imports this module)

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


# ------------------------------------------------------------------------------------ factory

#: ``ModelConfig.fusion`` name -> its class; the fusion names are this table's keys.
FUSIONS: dict[str, type[Fusion]] = {
    "none": NoFusion,
    "concat": ConcatFusion,
    "camode": CAMoDEFusion,
    "beenet": BEENetFusion,
}

#: Every fusion name ``build_fusion`` builds.
FUSION_KINDS: tuple[str, ...] = tuple(FUSIONS)


def fusion_class(kind: str) -> type[Fusion]:
    """The class of fusion ``kind`` (ask it what it reads), or ConfigError listing the names."""
    try:
        return FUSIONS[kind]
    except (KeyError, TypeError):
        raise not_one_of("model.fusion", kind, FUSION_KINDS) from None


def fusion_reads_priors(kind: str) -> bool:
    """True when fusion ``kind`` reads the fitted priors (so ``model.trainable_priors`` matters)."""
    return fusion_class(kind).reads_priors


def fusion_uses_context(kind: str) -> bool:
    """True when fusion ``kind`` needs context: the per-sample c_j or priors fitted on context labels."""
    cls = fusion_class(kind)
    return cls.reads_context or cls.reads_priors


def fusion_pools_contexts(kind: str) -> bool:
    """True when fusion ``kind`` pools over contexts with ``model.context_pool`` (pooling site c)."""
    return fusion_class(kind).pools_contexts


def build_priors(kind: str, num_contexts: int, trainable: bool = False, pseudocount: float = 0.0) -> ContextPriors:
    """The priors of a model with fusion ``kind``: with ``trainable``, exactly those it reads are
    parameters (a parameter no forward reads has no gradient, which DDP rejects)."""
    cls = fusion_class(kind)
    if trainable and not cls.reads_priors:
        log.warning("model.trainable_priors=true has no effect with model.fusion=%r (it reads no priors)", kind)
    return ContextPriors(
        num_contexts,
        trainable=trainable and cls.reads_priors,
        trainable_vad=trainable and cls.reads_vad_priors,
        pseudocount=pseudocount,
    )


def build_fusion(
    kind: str,
    dim: int,
    num_contexts: int,
    *,
    context_pool: str = "max",
    lam: float = 0.2,
    alpha: float = 10.0,
    tau: float = 0.5,
    form: str = "linear",
    camode_contexts: str = "parts",
    vad_context_pool: str = "probability",
    parts: tuple[int, ...] = (),
) -> Fusion:
    """The fusion ``ModelConfig.fusion`` names, for emotion features of width ``dim``; ``parts`` are
    the widths of the context parts in c (e.g. (365, 80)), one part of ``num_contexts`` by default."""
    cls = fusion_class(kind)
    if fusion_uses_context(kind) and num_contexts < 1:
        raise ConfigError(f"model.fusion={kind!r} needs at least one context (place or object stream)")
    options = FusionOptions(context_pool=context_pool, lam=lam, alpha=alpha, tau=tau, form=form,
                            camode_contexts=camode_contexts, vad_context_pool=vad_context_pool,
                            parts=tuple(parts))
    return cls.build(dim, num_contexts, options)
