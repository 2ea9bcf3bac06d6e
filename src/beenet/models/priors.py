"""The context priors, fitted once on the training split by Bayes' rule (``docs/method.md`` section 2).

``ContextPriors`` holds P+_ij = P(B_i | A_j), P-_ij = P(B_i | not A_j), P(B_i), P(A_j), the VAD
conditional means E[v | A_j], E[v | not A_j] and the VAD mean / std. They are buffers (parameters
when trainable) of the model, so they travel inside its state dict; before fitting they are neutral
(0.5). :func:`build_priors` makes the priors of a model: exactly those its fusion reads (the
fusion class's ``reads_priors`` / ``reads_vad_priors``, asked through the ``FUSIONS`` table) are
trainable. The fusions that read them are in :mod:`beenet.models.fusion`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from beenet.errors import BeenetError
from beenet.labels import NUM_CATEGORIES, NUM_VAD
from beenet.models.config import fusion_class

log = logging.getLogger(__name__)

#: Value of every probability prior before fitting: no context is informative yet.
NEUTRAL_PRIOR = 0.5
#: VAD mean before fitting: the middle of BoLD's 1..10 scale (std 1 until fitted).
NEUTRAL_VAD_MEAN = 5.5
#: Denominators at or below this are "no evidence": the conditional falls back to the marginal.
GUARD_EPS = 1e-6


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

