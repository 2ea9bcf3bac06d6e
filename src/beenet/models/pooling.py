"""The pooling family: ``pool(x[B, N, D], mask[B, N]) -> [B, D]`` at every site of the model.

BEE-NET's contribution is a pooling (its late fusion), and beenet pools in three more places: over
the frames of a clip (site a), over joints and time in the ST-GCN (site b) and over contexts or
streams in the fusion (site c). Every pooling here shares one masked interface, so that any site
can take any of them and the ablation changes one string (see ``docs/pooling.md``).

Conventions shared by every class:

* ``mask`` is bool ``[B, N]``, True for a real element; ``None`` means all real. Every row needs
  at least one real element (a ``ValueError`` says which rows do not).
* Padded positions are zero-filled before anything else, so whatever they hold (garbage, inf,
  NaN) changes neither the output nor any gradient, and their own gradient is exactly zero.
* The arithmetic runs in float32 whatever the input dtype (float16 / bfloat16 inputs, autocast),
  and the result is cast back to the input dtype: exp and pow never overflow a half type.
  Softmax goes through ``torch.softmax`` (which subtracts the row max) after a ``-inf`` fill.
* Every learnable pooling with an average special case takes ``init_average`` (default True)
  and then starts exactly at the masked mean, so swapping it in never starts worse than "mean".

The kinds are named by what they compute: ``mean`` (the masked mean; ``avg``, its old name, still
builds it with a deprecation warning), ``max``, ``mixed`` and ``gated`` (a learned and an
input-gated mix of max and mean), ``softpool``, ``gem``, ``simpool``, ``attention``, ``stats``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from beenet.choices import deprecated
from beenet.errors import ConfigError
from beenet.models.config import RENAMED_KINDS

__all__ = [
    "AttentionPool", "GatedMaxMeanPool", "GeMPool", "MaxPool", "MeanPool", "MixedMaxMeanPool",
    "POOL_KINDS", "SimPool", "SoftPool", "StatsPool", "make_pool",
]

EPS = 1e-6  # floor of clamped values before a pow (GeM, SimPool) and inside square roots (std)
GATE_BIAS_AVERAGE = -16.0  # gate bias: the gated max-mean pooling starts at the average (sigmoid(-16) ~ 1e-7)
GEM_P_RANGE = (0.5, 32.0)  # range of GeM's learned exponent p (the forward sees the clamped value)
SIMPOOL_GAMMA_RANGE = (0.5, 8.0)  # range of SimPool's learned exponent gamma


# ---------------------------------------------------------------------------------------- helpers


def _clamp_st(t: Tensor, lo: float, hi: float) -> Tensor:
    """Clamp in the forward pass, identity in the backward pass (straight-through).

    A learned parameter kept in a range this way can sit exactly on a bound (a = 0 is the average
    of the mixed pooling) and never gets stuck there: the gradient still reaches it.
    """
    return t + (t.clamp(lo, hi) - t).detach()


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


_CALLER_CHECKED_ROWS = 0  # > 0 inside rows_checked_by_caller(): no empty-row check


@contextlib.contextmanager
def rows_checked_by_caller() -> Iterator[None]:
    """Pools skip the empty-mask-row check (a device read-back: host sync, graph break); for steps
    whose masks ``data.dataset.collate`` checked on the host (training, validation)."""
    global _CALLER_CHECKED_ROWS
    _CALLER_CHECKED_ROWS += 1
    try:
        yield
    finally:
        _CALLER_CHECKED_ROWS -= 1


def _check(x: Tensor, mask: Tensor | None) -> Tensor | None:
    """Validate ``x[B, N, D]`` and ``mask[B, N]``; return the mask as bool (or None)."""
    if x.dim() != 3:
        raise ValueError(f"pooling expects x of shape [B, N, D], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"pooling expects a floating point x, got {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"pooling needs at least one element per sample, got x of shape {tuple(x.shape)}")
    if mask is None:
        return None
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"pooling mask must have shape [B, N] = {tuple(x.shape[:2])} to match x {tuple(x.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    mask = mask if mask.dtype == torch.bool else mask != 0
    if not _exporting() and not _CALLER_CHECKED_ROWS:
        empty = ~mask.any(dim=1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(
                f"pooling mask rows {rows[:10]} have no real element; every sample needs at least one "
                "(give an empty sample an all-True row, or drop it from the batch)"
            )
    return mask


def _fill(x: Tensor, mask: Tensor | None, value: float) -> Tensor:
    """``x[B, N, ...]`` with the padded positions set to ``value``."""
    if mask is None:
        return x
    m = mask.reshape(mask.shape + (1,) * (x.dim() - 2))
    return x.masked_fill(~m, value)


def _masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over dim 1 of ``x[B, N, D]`` (padded positions must already be zero)."""
    if mask is None:
        return x.mean(dim=1)
    count = mask.sum(dim=1, keepdim=True).to(x.dtype)
    return x.sum(dim=1) / count


def _masked_max(x: Tensor, mask: Tensor | None) -> Tensor:
    return _fill(x, mask, -math.inf).amax(dim=1)


def _masked_softmax(logits: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over dim 1 of float32 ``logits[B, N, ...]``, zero weight on padded positions."""
    return torch.softmax(_fill(logits.float(), mask, -math.inf), dim=1)


def _linear(x: Tensor, layer: nn.Linear) -> Tensor:
    """``layer(x)`` with the layer's parameters cast to x's dtype (autocast still applies)."""
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    return F.linear(x, layer.weight.to(x.dtype), bias)


class _Pool(nn.Module):
    """Base class: validates, zero-fills the padding, runs ``_pool`` in float32, casts back."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = _check(x, mask)
        xf = _fill(x.float(), mask, 0.0)
        return self._pool(xf, mask).to(x.dtype)

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_dim(name: str, dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"{name}: dim must be a positive integer, got {dim!r}")
    return dim


# ---------------------------------------------------------------------------------- baselines


class MeanPool(_Pool):
    """Masked mean over the N elements (the baseline every other pooling starts from)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return _masked_mean(x, mask)


class MaxPool(_Pool):
    """Masked max over the N elements, per channel."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return _masked_max(x, mask)


# ----------------------------------------------------------------------------- max-mean mixes


class MixedMaxMeanPool(_Pool):
    """``a * max + (1 - a) * mean`` with a learned ``a`` in [0, 1] (Lee, Gallagher, Tu 2016).

    Parametrisation: ``a = clamp(theta, 0, 1)`` with a straight-through gradient. It can hold
    exactly a = 0 (``init_average``: the average) while the gradient still moves theta, which a
    sigmoid cannot do (it reaches 0 only at an infinite logit, where its gradient vanishes).
    ``per_channel`` learns one a per channel (D parameters) instead of one for all.
    """

    def __init__(self, dim: int, per_channel: bool = True, init_average: bool = True) -> None:
        super().__init__()
        _check_dim("MixedMaxMeanPool", dim)
        self.dim = dim
        start = 0.0 if init_average else 0.5
        self.theta = nn.Parameter(torch.full((dim if per_channel else 1,), start))

    @property
    def a(self) -> Tensor:
        """The mixing proportion in [0, 1] (0 = average, 1 = max)."""
        return _clamp_st(self.theta, 0.0, 1.0)

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        a = self.a.float()
        return a * _masked_max(x, mask) + (1.0 - a) * _masked_mean(x, mask)


class GatedMaxMeanPool(_Pool):
    """``g * max + (1 - g) * mean`` with an input-dependent gate ``g = sigmoid(w . s + b)``.

    Lee et al. gate on the pooling region itself, which needs a fixed N; here the summary ``s`` is
    the masked mean of x, so N may vary. Default: one gate per sample (w in R^D). ``per_channel``:
    ``g_c = sigmoid(w_c s_c + b_c)`` (2D parameters). ``init_average``: w = 0 and
    b = ``GATE_BIAS_AVERAGE`` so that g ~ 1e-7, the average; the gate's gradient is then as small
    as g, so with plain SGD it leaves the average slowly (Adam rescales it); ``init_average=False``
    starts at g = 0.5.
    """

    def __init__(self, dim: int, per_channel: bool = False, init_average: bool = True) -> None:
        super().__init__()
        _check_dim("GatedMaxMeanPool", dim)
        self.dim = dim
        self.per_channel = per_channel
        bias = GATE_BIAS_AVERAGE if init_average else 0.0
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.full((dim if per_channel else 1,), bias))

    def gate(self, summary: Tensor) -> Tensor:
        """Gate ``[B, D]`` (per channel) or ``[B, 1]`` from the summary ``s[B, D]``."""
        w, b = self.weight.float(), self.bias.float()
        if self.per_channel:
            return torch.sigmoid(summary * w + b)
        return torch.sigmoid(summary @ w + b).unsqueeze(-1)

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        mean = _masked_mean(x, mask)
        g = self.gate(mean)
        return g * _masked_max(x, mask) + (1.0 - g) * mean


# ------------------------------------------------------------------------------ soft weightings


class SoftPool(_Pool):
    """``sum_i softmax_i(beta x) x_i`` per channel (Stergiou et al., ICCV 2021).

    Parameter-free with beta = 1 (the paper's SoftPool). Our extension, ``learn_temperature``,
    learns the inverse temperature beta = 1 / T: beta = 0 (T -> infinity) is the average,
    beta -> infinity (T -> 0) the max, beta < 0 leans to the min. ``init_average`` (only with a
    learned temperature) starts at beta = 0, else at beta = 1 (T = 1).
    """

    def __init__(self, dim: int | None = None, learn_temperature: bool = False, init_average: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.learn_temperature = learn_temperature
        if learn_temperature:
            self.beta = nn.Parameter(torch.tensor(0.0 if init_average else 1.0))
        else:
            self.register_buffer("beta", torch.tensor(1.0), persistent=False)

    @property
    def temperature(self) -> float:
        """T = 1 / beta (infinite at the average)."""
        beta = float(self.beta)
        return math.inf if beta == 0.0 else 1.0 / beta

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        weights = _masked_softmax(self.beta.float() * x, mask)
        return (weights * x).sum(dim=1)


class GeMPool(_Pool):
    """Generalised mean ``(mean_i clamp(x_i, eps)^p)^(1/p)`` with a learned p (Radenovic et al.).

    ``groups`` channels share one p (GGeM, Ko et al. 2022): 1 = one p for all, D = one per channel.
    p = 1 is the average (``init_average``; exact for x >= eps, i.e. the non-negative features
    GeM is meant for), else p starts at ``p_init`` (3, the usual choice); the forward clamps p to
    ``GEM_P_RANGE``. Computed as ``m * (mean (x/m)^p)^(1/p)`` with m the per-channel max, which is
    exact and keeps the pow inside [0, 1], so large p or large x cannot overflow.
    """

    def __init__(
        self, dim: int, groups: int = 1, init_average: bool = True, p_init: float = 3.0, eps: float = EPS
    ) -> None:
        super().__init__()
        _check_dim("GeMPool", dim)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or dim % groups:
            raise ConfigError(f"GeMPool: groups must be a positive divisor of dim={dim}, got {groups!r}")
        if not GEM_P_RANGE[0] <= p_init <= GEM_P_RANGE[1]:
            raise ConfigError(f"GeMPool: p_init must be in {GEM_P_RANGE}, got {p_init!r}")
        self.dim = dim
        self.groups = groups
        self.eps = eps
        self.p = nn.Parameter(torch.full((groups,), 1.0 if init_average else float(p_init)))

    def exponent(self) -> Tensor:
        """The clamped exponent per channel, ``[D]``."""
        p = _clamp_st(self.p.float(), *GEM_P_RANGE)
        return p.repeat_interleave(self.dim // self.groups)

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"GeMPool was built for dim={self.dim}, got x of shape {tuple(x.shape)}")
        p = self.exponent()
        xc = x.clamp(min=self.eps)
        top = _masked_max(xc, mask)  # [B, D], >= eps
        # In (0, 1]; padding set to 1, not 0: d(0^p)/dp = 0^p ln 0 would put a NaN in p's gradient.
        ratio = _fill(xc / top.unsqueeze(1), mask, 1.0)
        powered = _fill(ratio.pow(p), mask, 0.0)
        return top * _masked_mean(powered, mask).pow(1.0 / p)


# --------------------------------------------------------------------------------- attention


class SimPool(_Pool):
    """SimPool (Psomas et al., ICCV 2023): attention from the mean, then a generalised mean.

    ``q = W_q mean(X)``, ``K = W_k LN(X)``, ``a = softmax(K q / sqrt(D))``,
    ``V = X - min X`` (masked min over all real elements and channels of the sample),
    ``u = (sum_i a_i V_i^gamma)^(1/gamma) + min X``. Adding the min back (not in the paper) makes
    the pooling shift-equivariant and gives it an exact average case: ``init_average`` zero-inits
    W_q (uniform attention) and starts a learned gamma at 1 (the attention-weighted mean); without
    it, W_q is randomly initialised and gamma = ``gamma`` (2, the paper's choice for ReLU
    features), fixed unless ``learn_gamma``. The pow runs on V scaled into [0, 1] per sample.
    """

    def __init__(
        self, dim: int, gamma: float = 2.0, init_average: bool = True, learn_gamma: bool | None = None
    ) -> None:
        super().__init__()
        _check_dim("SimPool", dim)
        if not SIMPOOL_GAMMA_RANGE[0] <= gamma <= SIMPOOL_GAMMA_RANGE[1]:
            raise ConfigError(f"SimPool: gamma must be in {SIMPOOL_GAMMA_RANGE}, got {gamma!r}")
        self.dim = dim
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        if init_average:
            nn.init.zeros_(self.wq.weight)
        learn = init_average if learn_gamma is None else learn_gamma
        start = torch.tensor(1.0 if init_average else float(gamma))
        if learn:
            self.gamma = nn.Parameter(start)
        else:
            self.register_buffer("gamma", start)

    def attention(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Attention weights ``[B, N]`` (float32, zero on padding, rows sum to 1)."""
        q = _linear(_masked_mean(x, mask), self.wq)  # [B, D]
        normed = F.layer_norm(x, (self.dim,), self.norm.weight.float(), self.norm.bias.float(), self.norm.eps)
        k = _linear(normed, self.wk)  # [B, N, D]
        logits = torch.einsum("bnd,bd->bn", k.float(), q.float()) / math.sqrt(self.dim)
        return _masked_softmax(logits, mask)

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"SimPool was built for dim={self.dim}, got x of shape {tuple(x.shape)}")
        a = self.attention(x, mask)
        low = _fill(x, mask, math.inf).amin(dim=(1, 2), keepdim=True)  # [B, 1, 1]
        v = _fill(x - low, mask, 0.0)  # >= 0
        scale = v.amax(dim=(1, 2), keepdim=True).clamp(min=EPS)
        g = _clamp_st(self.gamma.float(), *SIMPOOL_GAMMA_RANGE)
        powered = (v / scale + EPS).pow(g)
        u = torch.einsum("bn,bnd->bd", a, powered).pow(1.0 / g) - EPS
        return u * scale.squeeze(1) + low.squeeze(1)


class AttentionPool(nn.Module):
    """Multi-head attention pooling: ``u = q + MHA(q, X, X)`` (Brothers, ICML 2025).

    The query is the masked mean of X, or a given focal token ``query[B, D]`` (e.g. the body
    stream at site c). ``init_average`` zero-inits the output projection, so the pooling starts
    at the query itself: the average when no query is given. ``num_heads`` defaults to the
    largest of 8, 4, 2, 1 that divides ``dim``. Padded keys get zero weight (``-inf`` logits).
    """

    def __init__(self, dim: int, num_heads: int | None = None, init_average: bool = True) -> None:
        super().__init__()
        _check_dim("AttentionPool", dim)
        if num_heads is None:
            num_heads = next(h for h in (8, 4, 2, 1) if dim % h == 0)
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1 or dim % num_heads:
            raise ConfigError(f"AttentionPool: num_heads must be a positive divisor of dim={dim}, got {num_heads!r}")
        self.dim = dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(dim, 2 * dim)
        self.out_proj = nn.Linear(dim, dim)
        if init_average:
            nn.init.zeros_(self.out_proj.weight)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None, query: Tensor | None = None) -> Tensor:
        """Pool ``x[B, N, D]`` into ``[B, D]``; ``query[B, D]`` replaces the mean as the query."""
        mask = _check(x, mask)
        if x.shape[-1] != self.dim:
            raise ValueError(f"AttentionPool was built for dim={self.dim}, got x of shape {tuple(x.shape)}")
        xf = _fill(x.float(), mask, 0.0)
        if query is None:
            q_in = _masked_mean(xf, mask)
        else:
            if query.shape != (x.shape[0], self.dim):
                raise ValueError(
                    f"AttentionPool query must have shape [B, D] = {(x.shape[0], self.dim)}, got {tuple(query.shape)}"
                )
            q_in = query.float()
        b, n, d = xf.shape
        h, dh = self.num_heads, d // self.num_heads
        q = _linear(q_in, self.q_proj).float().view(b, h, dh)
        k, v = _linear(xf, self.kv_proj).float().view(b, n, 2, h, dh).unbind(dim=2)  # [B, N, H, dh]
        logits = torch.einsum("bhe,bnhe->bnh", q, k) / math.sqrt(dh)
        weights = _masked_softmax(logits, mask)  # [B, N, H]
        mixed = torch.einsum("bnh,bnhe->bhe", weights, v).reshape(b, d)
        return (q_in + _linear(mixed, self.out_proj).float()).to(x.dtype)


class StatsPool(_Pool):
    """Statistics pooling: ``W [mean; std] + b`` projected back to D (2D^2 + D parameters).

    ``init_average`` sets W = [I, 0] and b = 0, so it starts at the mean and learns how much the
    spread over the elements (e.g. how much a person moves over the clip) should add. The std is
    the masked population std, ``sqrt(var + eps)`` so its gradient stays finite at zero spread.
    """

    def __init__(self, dim: int, init_average: bool = True) -> None:
        super().__init__()
        _check_dim("StatsPool", dim)
        self.dim = dim
        self.proj = nn.Linear(2 * dim, dim)
        if init_average:
            with torch.no_grad():
                self.proj.weight.zero_()
                self.proj.weight[:, :dim].copy_(torch.eye(dim))
                self.proj.bias.zero_()

    def _pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"StatsPool was built for dim={self.dim}, got x of shape {tuple(x.shape)}")
        mean = _masked_mean(x, mask)
        centred = _fill(x - mean.unsqueeze(1), mask, 0.0)
        std = (_masked_mean(centred * centred, mask) + EPS).sqrt()
        return _linear(torch.cat([mean, std], dim=-1), self.proj).float()


# ------------------------------------------------------------------------------------ factory

_CONSTRUCTORS: dict[str, Callable[..., nn.Module]] = {
    "mean": MeanPool,
    "max": MaxPool,
    "mixed": MixedMaxMeanPool,
    "gated": GatedMaxMeanPool,
    "softpool": SoftPool,
    "gem": GeMPool,
    "simpool": SimPool,
    "attention": AttentionPool,
    "stats": StatsPool,
}

#: Every pooling kind ``make_pool`` builds.
POOL_KINDS: tuple[str, ...] = tuple(_CONSTRUCTORS)

#: The classes' old names, kept importable.
AvgPool = MeanPool
MixedMaxAvgPool = MixedMaxMeanPool
GatedMaxAvgPool = GatedMaxMeanPool


def make_pool(kind: str, dim: int, **kwargs: object) -> nn.Module:
    """Build the pooling ``kind`` over ``dim`` channels; ``kwargs`` go to its constructor.

    ``init_average`` is accepted by every kind (ignored by the parameter-free mean and max), so a
    config can set it once for all sites. Raises ``ConfigError`` (a ``ValueError``) naming the
    valid kinds or the valid keyword arguments.
    """
    if isinstance(kind, str) and kind in RENAMED_KINDS:
        deprecated("pooling kind", kind, RENAMED_KINDS[kind])
        kind = RENAMED_KINDS[kind]
    try:
        ctor = _CONSTRUCTORS[kind]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown pooling kind {kind!r}; choose one of: {', '.join(POOL_KINDS)}") from None
    if "init_average" not in inspect.signature(ctor).parameters:  # parameter-free: mean, max
        kwargs.pop("init_average", None)
    try:
        inspect.signature(ctor).bind(dim, **kwargs)
    except TypeError as err:
        params = [p for p in inspect.signature(ctor).parameters if p != "dim"]
        raise ConfigError(
            f"pooling {kind!r}: {err}; its options are: {', '.join(params) or '(none)'}"
        ) from None
    return ctor(dim, **kwargs)
