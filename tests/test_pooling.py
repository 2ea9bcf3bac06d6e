"""The pooling family: one masked interface, exact average special cases, stable numerics."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from beenet.errors import ConfigError
from beenet.models.pooling import (
    POOL_KINDS,
    AttentionPool,
    GeMPool,
    MaxPool,
    MeanPool,
    MixedMaxMeanPool,
    SimPool,
    SoftPool,
    make_pool,
)

D = 8
#: Kinds with learnable parameters and an average special case at init.
AVERAGE_AT_INIT = ("mixed", "gated", "gem", "simpool", "attention", "stats")
LEARNABLE = ("mixed", "gated", "gem", "simpool", "attention", "stats")


def _data(seed: int = 0, b: int = 3, n: int = 7, d: int = D, positive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, n, d, generator=g) + 0.05 if positive else torch.randn(b, n, d, generator=g)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 4:] = False
    mask[2, 1:] = False  # a single real element
    return x, mask


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def _pool(kind: str, init_average: bool = True, seed: int = 0, **kw: object) -> torch.nn.Module:
    if kind == "softpool":
        kw.setdefault("learn_temperature", True)
    with torch.random.fork_rng():  # a repeatable random init that leaves the global RNG alone
        torch.manual_seed(seed)
        return make_pool(kind, D, init_average=init_average, **kw)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_shape_dtype_and_mask_none_equals_all_true(kind: str) -> None:
    pool = _pool(kind, init_average=False)
    x, _ = _data()
    out = pool(x)
    assert out.shape == (3, D) and out.dtype == x.dtype
    torch.testing.assert_close(out, pool(x, torch.ones(3, 7, dtype=torch.bool)))


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_padding_changes_nothing_output_or_gradient(kind: str) -> None:
    pool = _pool(kind, init_average=False)
    x, mask = _data(positive=kind == "gem")
    results = []
    for garbage in (0.0, 1e4, -3e4, math.inf, math.nan):
        pool.zero_grad()
        xi = x.masked_fill(~mask[..., None], garbage).requires_grad_(True)
        out = pool(xi, mask)
        (out * torch.linspace(-1, 1, D)).sum().backward()
        assert torch.isfinite(out).all(), garbage
        assert torch.isfinite(xi.grad).all() and (xi.grad[~mask] == 0).all(), garbage
        grads = [p.grad.clone() for p in pool.parameters()]
        assert all(torch.isfinite(g).all() for g in grads)
        results.append((out.detach(), xi.grad[mask].clone(), grads))
    for out, xgrad, grads in results[1:]:
        torch.testing.assert_close(out, results[0][0])
        torch.testing.assert_close(xgrad, results[0][1])
        for g, g0 in zip(grads, results[0][2]):
            torch.testing.assert_close(g, g0)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_padded_batch_equals_each_sample_alone(kind: str) -> None:
    pool = _pool(kind, init_average=False)
    x, mask = _data(positive=kind == "gem")
    out = pool(x, mask)
    for i in range(x.shape[0]):
        alone = pool(x[i : i + 1, mask[i]])
        torch.testing.assert_close(out[i : i + 1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_permutation_invariance(kind: str) -> None:
    pool = _pool(kind, init_average=False)
    x, mask = _data(positive=kind == "gem")
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pool(x, mask), pool(x[:, perm], mask[:, perm]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", LEARNABLE + ("softpool",))
@pytest.mark.parametrize("init_average", [False, True])
def test_gradient_finite_and_reaches_parameters(kind: str, init_average: bool) -> None:
    pool = _pool(kind, init_average=init_average)
    x, mask = _data(positive=kind == "gem")
    x.requires_grad_(True)
    (pool(x, mask) * torch.linspace(-1, 1, D)).sum().backward()
    assert torch.isfinite(x.grad).all()
    params = dict(pool.named_parameters())
    assert params, f"{kind} has no learnable parameter"
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not init_average:  # away from the average every parameter already learns
            assert p.grad.abs().sum() > 0, name
    # At the average, at least the parameters that leave it get a gradient.
    assert sum(float(p.grad.abs().sum()) for p in params.values()) > 0


@pytest.mark.parametrize("kind", AVERAGE_AT_INIT + ("softpool", "mean"))
def test_average_special_case_at_init(kind: str) -> None:
    pool = _pool(kind, init_average=True)
    x, mask = _data(positive=True)  # GeM's average case holds on x >= eps
    torch.testing.assert_close(pool(x, mask), _masked_mean(x, mask), rtol=0, atol=1e-5)
    if kind not in ("gem",):
        x, mask = _data(seed=5)
        torch.testing.assert_close(pool(x, mask), _masked_mean(x, mask), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", POOL_KINDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_do_not_overflow(kind: str, dtype: torch.dtype) -> None:
    pool = _pool(kind, init_average=False)
    g = torch.Generator().manual_seed(3)
    x = 50.0 + 5.0 * torch.randn(2, 40, D, generator=g)  # exp(50) overflows float16
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 10:] = False
    xh = x.to(dtype).requires_grad_(True)
    out = pool(xh, mask)
    out.float().sum().backward()
    assert out.dtype == dtype and torch.isfinite(out).all() and torch.isfinite(xh.grad).all()
    ref = pool(xh.detach().float(), mask)
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=0.5)


@pytest.mark.parametrize("kind", ("simpool", "attention", "stats", "gated"))
def test_autocast_bfloat16_is_finite(kind: str) -> None:
    pool = _pool(kind, init_average=False)
    x, mask = _data()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pool(30 * x, mask)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_softpool_large_values_float16_matches_float32() -> None:
    x = torch.tensor([[[50.0], [52.0], [49.0]]])
    expected = (torch.softmax(x.double(), dim=1) * x.double()).sum(1).float()
    out = SoftPool()(x.half())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, rtol=1e-3, atol=5e-2)


def test_gem_between_mean_and_max_for_p_above_one() -> None:
    x, mask = _data(positive=True, n=12, d=D)
    mean, top = _masked_mean(x, mask), MaxPool()(x, mask)
    previous = mean
    for p in (1.5, 3.0, 8.0, 32.0):
        out = GeMPool(D, init_average=False, p_init=p)(x, mask)
        assert (out >= previous - 1e-5).all() and (out <= top + 1e-5).all()
        previous = out
    torch.testing.assert_close(previous, top, rtol=0.1, atol=0.1)  # p = 32 is close to the max


def test_gem_groups_share_p_and_large_values_are_finite() -> None:
    pool = GeMPool(D, groups=2, init_average=False)
    assert pool.p.shape == (2,)
    assert pool.exponent().shape == (D,)
    out = pool(torch.full((1, 4, D), 1e30), None)
    assert torch.isfinite(out).all()
    with pytest.raises(ConfigError):
        GeMPool(D, groups=3)


def test_mixed_can_sit_at_zero_and_still_learn() -> None:
    pool = MixedMaxMeanPool(D)
    assert (pool.a == 0).all()
    x, mask = _data()
    pool(x, mask).sum().backward()  # max >= mean, so d/da > 0
    assert (pool.theta.grad > 0).all()
    with torch.no_grad():
        pool.theta.fill_(-0.5)
    assert (pool.a == 0).all()
    pool.theta.grad = None
    pool(x, mask).sum().backward()
    assert (pool.theta.grad > 0).all()  # straight-through: not stuck below the bound


def test_attention_focal_query_is_output_at_init() -> None:
    pool = AttentionPool(D)
    x, mask = _data()
    query = torch.randn(3, D, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(pool(x, mask, query=query), query)
    with pytest.raises(ValueError, match="query"):
        pool(x, mask, query=query[:, :4])


def test_simpool_default_is_the_papers_gamma_two() -> None:
    torch.manual_seed(0)  # the attention's random init, independent of the tests run before
    pool = SimPool(D, init_average=False)
    assert float(pool.gamma) == 2.0 and not isinstance(pool.gamma, torch.nn.Parameter)
    x, mask = _data(positive=True)
    out = pool(x, mask)
    # A power mean with gamma = 2 of the attention weights sits above their weighted mean.
    a = pool.attention(x, mask)
    weighted = torch.einsum("bn,bnd->bd", a, x)
    assert (out >= weighted - 1e-5).all()


def test_empty_row_and_bad_shapes_raise() -> None:
    x, mask = _data()
    mask[1] = False
    for kind in POOL_KINDS:
        with pytest.raises(ValueError, match=r"rows \[1\]"):
            _pool(kind)(x, mask)
    with pytest.raises(ValueError, match=r"\[B, N, D\]"):
        MeanPool()(x[0])
    with pytest.raises(ValueError, match="mask"):
        MeanPool()(x, mask[:, :3])


def test_make_pool_errors_name_the_choices() -> None:
    with pytest.raises(ValueError, match="softpool"):
        make_pool("median", D)
    with pytest.raises(ConfigError, match="groups"):
        make_pool("gem", D, group=2)
    assert isinstance(make_pool("mean", D, init_average=False), MeanPool)
    assert set(POOL_KINDS) == {"mean", "max", "mixed", "gated", "softpool", "gem", "simpool", "attention", "stats"}


def test_old_kind_avg_still_builds_the_mean_with_a_deprecation_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="beenet"):
        pool = make_pool("avg", D, init_average=False)
    assert isinstance(pool, MeanPool)
    assert "'avg' is deprecated, write 'mean'" in caplog.text


def test_pool_kinds_are_the_config_choices() -> None:
    """``ModelConfig``'s hints own the choice lists; they must name exactly what make_pool builds."""
    from beenet.choices import choices
    from beenet.models import ModelConfig

    assert choices(ModelConfig, "temporal_pool") == POOL_KINDS
    assert choices(ModelConfig, "skeleton_pool") == POOL_KINDS
    for site_c in ("context_pool", "stream_pool"):  # site c takes a subset
        assert set(choices(ModelConfig, site_c)) <= set(POOL_KINDS), site_c


# ------------------------------------------------------------------ property tests (hypothesis)

_arrays = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 4)),
    elements=st.floats(-1e3, 1e3, width=32),
)


def _mask_for(shape: tuple[int, ...], bits: int) -> torch.Tensor:
    b, n = shape[:2]
    mask = torch.tensor([[(bits >> ((i * n + j) % 31)) & 1 == 1 for j in range(n)] for i in range(b)])
    mask[:, 0] |= ~mask.any(1)  # every row keeps one real element
    return mask


@settings(max_examples=60, deadline=None)
@given(_arrays, st.integers(0, 2**31 - 1))
def test_property_mean_max(arr: np.ndarray, bits: int) -> None:
    x = torch.from_numpy(arr)
    mask = _mask_for(arr.shape, bits)
    mean, top = MeanPool()(x, mask), MaxPool()(x, mask)
    for i in range(arr.shape[0]):
        real = arr[i][mask[i].numpy()]
        np.testing.assert_allclose(top[i].numpy(), real.max(0), rtol=0, atol=0)
        np.testing.assert_allclose(mean[i].numpy(), real.astype(np.float64).mean(0), rtol=1e-5, atol=1e-3)
    assert (mean <= top + 1e-3).all()


@settings(max_examples=60, deadline=None)
@given(_arrays, st.integers(0, 2**31 - 1), st.floats(-100, 100))
def test_property_softpool_between_mean_and_max_and_shift_equivariant(
    arr: np.ndarray, bits: int, shift: float
) -> None:
    x = torch.from_numpy(arr)
    mask = _mask_for(arr.shape, bits)
    pool = SoftPool()
    out = pool(x, mask)
    tol = 1e-3 + 1e-5 * float(np.abs(arr).max(initial=0))
    assert torch.isfinite(out).all()
    assert (out >= MeanPool()(x, mask) - tol).all()
    assert (out <= MaxPool()(x, mask) + tol).all()
    torch.testing.assert_close(pool(x + shift, mask), out + shift, rtol=0, atol=10 * tol)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_onnx_export_matches_with_other_shapes(kind: str, tmp_path: Path) -> None:
    """Inference exports the model to ONNX: every pooling must trace with dynamic B and N."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pool = _pool(kind, init_average=False).eval()
    x, mask = _data(positive=True)
    path = tmp_path / f"{kind}.onnx"
    with warnings.catch_warnings():  # tracer warnings about the Python-side checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pool, (x, mask), str(path), input_names=["x", "mask"], dynamo=False, opset_version=17,
            dynamic_axes={"x": {0: "b", 1: "n"}, "mask": {0: "b", 1: "n"}},
        )
    x2, mask2 = _data(seed=4, b=4, n=11, positive=True)
    got = ort.InferenceSession(str(path)).run(None, {"x": x2.numpy(), "mask": mask2.numpy()})[0]
    np.testing.assert_allclose(got, pool(x2, mask2).detach().numpy(), rtol=1e-4, atol=1e-5)
