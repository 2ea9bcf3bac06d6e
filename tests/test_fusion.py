"""Context priors (Bayes' rule, guards, state dict) and the fusions on hand-computed values."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from beenet.choices import choices
from beenet.errors import BeenetError, ConfigError
from beenet.labels import NUM_CATEGORIES, NUM_VAD
from beenet.models.config import ModelConfig, register_fusion
from beenet.models.fusion import (
    FUSION_KINDS,
    FUSIONS,
    BEENetFusion,
    CAMoDEFusion,
    ConcatFusion,
    Fusion,
    FusionOptions,
    NoFusion,
    build_fusion,
    fusion_class,
    fusion_reads_priors,
)
from beenet.models.priors import ContextPriors, build_priors


def _tiny_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 samples, 3 contexts: context 0 seen half the time, context 1 never, context 2 always."""
    c = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=np.float32)
    y = np.zeros((4, NUM_CATEGORIES), dtype=np.float32)
    y[:, 0] = [1.0, 0.6, 0.0, 0.2]
    y[:, 1] = [0.0, 0.0, 1.0, 1.0]
    v = np.array([[2, 3, 1], [4, 3, 2], [6, 3, 3], [8, 3, 4]], dtype=np.float32)
    return c, y, v


def _reference_fit(c: np.ndarray, y: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Bayes' rule written with loops, independently of the vectorised code."""
    n, J = c.shape
    K = y.shape[1]
    p_b = [sum(y[s, i] for s in range(n)) / n for i in range(K)]
    p_a = [sum(c[s, j] for s in range(n)) / n for j in range(J)]
    pos = np.zeros((K, J))
    neg = np.zeros((K, J))
    for i in range(K):
        for j in range(J):
            joint = sum(y[s, i] * c[s, j] for s in range(n)) / n
            pos[i, j] = joint / p_a[j] if p_a[j] > 1e-6 else p_b[i]
            neg[i, j] = (p_b[i] - joint) / (1 - p_a[j]) if 1 - p_a[j] > 1e-6 else p_b[i]
    mean = v.mean(0)
    vpos = np.zeros((3, J))
    vneg = np.zeros((3, J))
    for k in range(3):
        for j in range(J):
            vpos[k, j] = sum(v[s, k] * c[s, j] for s in range(n)) / n / p_a[j] if p_a[j] > 1e-6 else mean[k]
            vneg[k, j] = (
                sum(v[s, k] * (1 - c[s, j]) for s in range(n)) / n / (1 - p_a[j]) if 1 - p_a[j] > 1e-6 else mean[k]
            )
    return {"p_pos": np.clip(pos, 0, 1), "p_neg": np.clip(neg, 0, 1), "vad_pos": vpos, "vad_neg": vneg,
            "p_b": np.array(p_b), "p_a": np.array(p_a)}


def test_neutral_before_fitting() -> None:
    pr = ContextPriors(5)
    assert not pr.is_fitted
    for name in ("p_pos", "p_neg", "p_b", "p_a"):
        assert torch.equal(getattr(pr, name), torch.full_like(getattr(pr, name), 0.5)), name
    assert torch.equal(pr.vad_std, torch.ones(NUM_VAD))
    assert torch.equal(pr.vad_pos, pr.vad_mean[:, None].expand(NUM_VAD, 5))


def test_fit_matches_hand_computation_with_guards() -> None:
    c, y, v = _tiny_example()
    pr = ContextPriors(3)
    pr.fit(c, y, v)
    assert pr.is_fitted
    # Category 0: P(B) = 1.8 / 4 = 0.45; context 0: P(A) = 0.5, P(B, A) = 1.6 / 4 = 0.4.
    assert pr.p_b[0].item() == pytest.approx(0.45)
    assert pr.p_a.tolist() == pytest.approx([0.5, 0.0, 1.0])
    assert pr.p_pos[0, 0].item() == pytest.approx(0.8)  # 0.4 / 0.5
    assert pr.p_neg[0, 0].item() == pytest.approx(0.1)  # (0.45 - 0.4) / 0.5
    # Context 1 is never seen: P+ has no evidence and falls back to P(B); P- = P(B) / 1.
    assert pr.p_pos[0, 1].item() == pytest.approx(0.45)
    assert pr.p_neg[0, 1].item() == pytest.approx(0.45)
    # Context 2 is always seen: P+ = P(B) / 1; P- has no evidence and falls back to P(B).
    assert pr.p_pos[0, 2].item() == pytest.approx(0.45)
    assert pr.p_neg[0, 2].item() == pytest.approx(0.45)
    # Category 1 only where context 0 is absent.
    assert pr.p_pos[1, 0].item() == pytest.approx(0.0)
    assert pr.p_neg[1, 0].item() == pytest.approx(1.0)
    # VAD: valence 2, 4, 6, 8 -> mean 5, population std sqrt(5); E[v | A_0] = 3, E[v | not A_0] = 7.
    assert pr.vad_mean.tolist() == pytest.approx([5.0, 3.0, 2.5])
    assert pr.vad_std[0].item() == pytest.approx(math.sqrt(5.0))
    assert pr.vad_std[1].item() == 1.0  # constant arousal: std guarded to 1, no division by 0
    assert pr.vad_pos[0].tolist() == pytest.approx([3.0, 5.0, 5.0])
    assert pr.vad_neg[0].tolist() == pytest.approx([7.0, 5.0, 5.0])
    for name in ("p_pos", "p_neg", "vad_pos", "vad_neg"):
        assert torch.isfinite(getattr(pr, name)).all()


def test_fit_matches_loop_reference_on_soft_random_data() -> None:
    rng = np.random.default_rng(0)
    c = rng.random((23, 7)).astype(np.float32)
    c[:, 3] = 0.0
    c[:, 5] = 1.0
    y = rng.random((23, NUM_CATEGORIES)).astype(np.float32)
    v = (1 + 9 * rng.random((23, 3))).astype(np.float32)
    pr = ContextPriors(7)
    pr.fit(torch.from_numpy(c), torch.from_numpy(y), torch.from_numpy(v))
    ref = _reference_fit(c.astype(np.float64), y.astype(np.float64), v.astype(np.float64))
    for name, expected in ref.items():
        np.testing.assert_allclose(getattr(pr, name).numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert ((pr.p_pos >= 0) & (pr.p_pos <= 1)).all() and ((pr.p_neg >= 0) & (pr.p_neg <= 1)).all()


def test_fit_rejects_bad_input() -> None:
    c, y, v = _tiny_example()
    pr = ContextPriors(3)
    with pytest.raises(BeenetError, match=r"context must have shape \[N, 3\]"):
        pr.fit(c[:, :2], y, v)
    with pytest.raises(BeenetError, match="row 2"):
        bad = y.copy()
        bad[2, 4] = np.nan
        pr.fit(c, bad, v)
    with pytest.raises(BeenetError, match=r"\[0, 1\]"):
        pr.fit(c * 2, y, v)
    with pytest.raises(BeenetError, match="no training samples"):
        pr.fit(c[:0], y[:0], v[:0])
    assert not pr.is_fitted


def test_priors_in_state_dict_and_survive_save_load(tmp_path) -> None:
    c, y, v = _tiny_example()
    pr = ContextPriors(3)
    pr.fit(c, y, v)
    state = pr.state_dict()
    for name in ("p_pos", "p_neg", "p_b", "p_a", "vad_pos", "vad_neg", "vad_mean", "vad_std", "fitted"):
        assert name in state
    path = tmp_path / "priors.pt"
    torch.save(state, path)
    other = ContextPriors(3)
    other.load_state_dict(torch.load(path, weights_only=True))
    assert other.is_fitted
    for name, value in state.items():
        assert torch.equal(getattr(other, name), value), name


def test_trainable_priors_are_parameters_initialised_from_the_fit() -> None:
    c, y, v = _tiny_example()
    fixed, learn = ContextPriors(3), ContextPriors(3, trainable=True)
    fixed.fit(c, y, v)
    learn.fit(c, y, v)
    names = {n for n, _ in learn.named_parameters()}
    assert names == {"p_pos", "p_neg", "vad_pos", "vad_neg"}
    assert not list(fixed.parameters())
    for name in names:
        assert torch.equal(getattr(learn, name).detach(), getattr(fixed, name))
    # Same state-dict keys either way, so a checkpoint loads into both.
    assert set(learn.state_dict()) == set(fixed.state_dict())
    fusion = BEENetFusion(8, pool="mean")
    out = fusion(torch.randn(2, 8), torch.rand(2, 3), learn)
    (out["categories"].sum() + out["vad_z"].sum()).backward()
    assert learn.p_pos.grad is not None and learn.p_pos.grad.abs().sum() > 0
    assert learn.vad_pos.grad is not None and learn.vad_pos.grad.abs().sum() > 0


def _set_classifier(fusion: torch.nn.Module, logits: list[float], vad_z: list[float]) -> None:
    with torch.no_grad():
        fusion.classifier.weight.zero_()
        fusion.classifier.bias.copy_(torch.tensor(logits + vad_z))


def _hand_priors() -> ContextPriors:
    pr = ContextPriors(2)
    with torch.no_grad():
        pr.p_pos[0] = torch.tensor([0.9, 0.3])
        pr.p_neg[0] = torch.tensor([0.2, 0.4])
        pr.p_pos[1] = torch.tensor([0.8, 0.6])
        pr.p_neg[1] = torch.tensor([0.2, 0.1])
        pr.vad_mean.copy_(torch.tensor([5.0, 4.0, 6.0]))
        pr.vad_std.copy_(torch.tensor([2.0, 1.0, 1.0]))
        pr.vad_pos[0] = torch.tensor([7.0, 3.0])
        pr.vad_neg[0] = torch.tensor([4.0, 5.0])
    return pr


def test_camode_classes_reading_matches_the_formula_on_hand_values() -> None:
    """The older reading: global priors, max over the per-class contexts, sigmoid-scale form."""
    pr = _hand_priors()
    fusion = CAMoDEFusion(4, lam=0.2, alpha=10.0, tau=0.5, form="scale", contexts="classes")
    _set_classifier(fusion, [0.0] * NUM_CATEGORIES, [0.5, 0.0, 0.0])
    out = fusion(torch.randn(3, 4), torch.rand(3, 2), pr)
    # Category 0: p+ = max(0.9, 0.3) = 0.9, p- = max(0.2, 0.4) = 0.4, Q = sigmoid(10 (0.9 - 0.5)).
    q = 1.0 / (1.0 + math.exp(-4.0))
    prior0 = q * 0.9 + (1 - q) * 0.4
    assert out["categories"][:, 0].tolist() == pytest.approx([prior0 * 0.5 / 0.2] * 3, rel=1e-6)
    # Category 1: p+ = 0.8, p- = 0.2, Q = sigmoid(3).
    q1 = 1.0 / (1.0 + math.exp(-3.0))
    prior1 = q1 * 0.8 + (1 - q1) * 0.2
    assert out["categories"][0, 1].item() == pytest.approx(prior1 * 0.5 / 0.2, rel=1e-6)
    # Neutral categories: p+ = p- = 0.5 -> 0.5 * 0.5 / 0.2.
    assert out["categories"][0, 5].item() == pytest.approx(1.25, rel=1e-6)
    # The gate is global: the context does not change the output; VAD is the stream's.
    again = fusion(torch.randn(3, 4), torch.rand(3, 2), pr)
    assert torch.allclose(out["categories"], again["categories"])
    assert out["vad_z"][:, 0].tolist() == pytest.approx([0.5] * 3)
    # category_logits: the odds form logit(y) + log(prior / lambda).
    assert out["category_logits"][0, 0].item() == pytest.approx(math.log(prior0 / 0.2), rel=1e-5)


def test_beenet_fusion_matches_the_formula_on_hand_values() -> None:
    pr = _hand_priors()
    context = torch.tensor([[0.25, 1.0], [0.0, 0.0]])
    expected_max = {0: [max(0.9 * 0.25 + 0.2 * 0.75, 0.3), max(0.2, 0.4)],
                    1: [max(0.8 * 0.25 + 0.2 * 0.75, 0.6), max(0.2, 0.1)]}
    expected_mean = {0: [(0.375 + 0.3) / 2, (0.2 + 0.4) / 2], 1: [(0.35 + 0.6) / 2, (0.2 + 0.1) / 2]}
    for pool, expected in (("max", expected_max), ("mean", expected_mean)):
        fusion = BEENetFusion(4, pool=pool, lam=0.2, form="scale", vad_pool="context_pool")
        _set_classifier(fusion, [0.0] * NUM_CATEGORIES, [1.0, 0.0, 0.0])
        out = fusion(torch.randn(2, 4), context, pr)
        for i, prior in expected.items():
            assert out["categories"][:, i].tolist() == pytest.approx([p * 0.5 / 0.2 for p in prior], rel=1e-6)
        # VAD (valence): per context E+ c + E- (1 - c), pooled, standardised, gate 0.5 with the stream (z = 1).
        per_ctx = [[7 * 0.25 + 4 * 0.75, 3 * 1.0 + 5 * 0.0], [4.0, 5.0]]
        for b in range(2):
            pooled = max(per_ctx[b]) if pool == "max" else sum(per_ctx[b]) / 2
            z = 0.5 * 1.0 + 0.5 * (pooled - 5.0) / 2.0
            assert out["vad_z"][b, 0].item() == pytest.approx(z, rel=1e-6)


def test_camode_parts_reading_uses_each_parts_argmax_and_confidence() -> None:
    """The authors' gate: two contexts (here parts of widths 1 and 1... and 2 + 1 below), each with
    confidence c = its max probability; p+- = c P+-[argmax] + (1 - c) P(B); max over parts; Eq. 16."""
    pr = ContextPriors(3)
    with torch.no_grad():
        pr.p_pos[0] = torch.tensor([0.9, 0.3, 0.7])
        pr.p_neg[0] = torch.tensor([0.2, 0.4, 0.1])
        pr.p_b[0] = 0.3
    fusion = CAMoDEFusion(4, lam=0.2, alpha=10.0, tau=0.5, form="linear", contexts="parts", parts=(2, 1))
    _set_classifier(fusion, [2.0] * NUM_CATEGORIES, [0.0, 0.0, 0.0])
    context = torch.tensor([[0.8, 0.2, 0.5], [0.1, 0.9, 0.0]])
    out = fusion(torch.randn(2, 4), context, pr)

    def gate(pp: float, pn: float) -> float:
        q = 1.0 / (1.0 + math.exp(-10.0 * (pp - 0.5)))
        return q * pp + (1 - q) * pn

    # Sample 0: part 1 argmax = 0 (c 0.8), part 2 = class 2 (c 0.5).
    pp0 = max(0.8 * 0.9 + 0.2 * 0.3, 0.5 * 0.7 + 0.5 * 0.3)
    pn0 = max(0.8 * 0.2 + 0.2 * 0.3, 0.5 * 0.1 + 0.5 * 0.3)
    # Sample 1: part 1 argmax = 1 (c 0.9), part 2 has c = 0: the marginal.
    pp1 = max(0.9 * 0.3 + 0.1 * 0.3, 0.3)
    pn1 = max(0.9 * 0.4 + 0.1 * 0.3, 0.3)
    expected = [gate(pp0, pn0) * 2.0 / 0.2, gate(pp1, pn1) * 2.0 / 0.2]
    assert out["categories"][:, 0].tolist() == pytest.approx(expected, rel=1e-6)
    # The per-sample context matters in this reading, and it is refused without context.
    with pytest.raises(BeenetError, match="context"):
        fusion(torch.randn(2, 4), None, pr)


@pytest.mark.parametrize("kind", ["camode", "beenet"])
def test_linear_form_is_eq16_on_the_raw_linear_output(kind: str) -> None:
    """Eq. 16, the authors' form: y~ = p^ z / lambda with z the classifier's raw output."""
    pr = _hand_priors()
    context = torch.tensor([[0.25, 1.0], [0.0, 0.0]])
    feats = torch.randn(2, 4)
    linear = build_fusion(kind, 4, 2, form="linear")
    scale = build_fusion(kind, 4, 2, form="scale")
    scale.load_state_dict(linear.state_dict())
    _set_classifier(linear, [-1.5] + [3.0] * (NUM_CATEGORIES - 1), [0.0, 0.0, 0.0])
    _set_classifier(scale, [-1.5] + [3.0] * (NUM_CATEGORIES - 1), [0.0, 0.0, 0.0])
    a, b = linear(feats, context, pr), scale(feats, context, pr)
    z = torch.tensor([-1.5] + [3.0] * (NUM_CATEGORIES - 1))
    prior = b["categories"] * 0.2 / torch.sigmoid(z)  # p^ recovered from the sigmoid-scale reading
    assert torch.allclose(a["categories"], prior * z / 0.2, atol=1e-6)
    # Unbounded (no sigmoid), same odds-form logits for BCE.
    assert a["categories"][:, 1].max() > 1 / 0.2 * 0.5
    assert torch.equal(a["category_logits"], b["category_logits"])


@pytest.mark.parametrize("kind", ["none", "concat"])
def test_plain_fusions_output_the_raw_score_under_the_linear_form(kind: str) -> None:
    feats, context = torch.randn(3, 4), torch.rand(3, 2)
    linear, odds = build_fusion(kind, 4, 2, form="linear"), build_fusion(kind, 4, 2, form="odds")
    odds.load_state_dict(linear.state_dict())
    a, b = linear(feats, context, ContextPriors(2)), odds(feats, context, ContextPriors(2))
    assert torch.equal(a["categories"], a["category_logits"])
    assert torch.allclose(torch.sigmoid(a["categories"]), b["categories"])


def test_vad_from_context_pools_by_the_context_probabilities() -> None:
    """Section 2.7: t_j = E[v|A_j] c_j + E[v|not A_j] (1 - c_j), pooled with weights c_j / sum c (or
    the mean); the older reading (max) is above both."""
    pr = _hand_priors()
    context = torch.tensor([[0.25, 1.0]])
    t = [7 * 0.25 + 4 * 0.75, 3 * 1.0 + 5 * 0.0]
    want = {"probability": (0.25 * t[0] + 1.0 * t[1]) / 1.25, "mean": sum(t) / 2, "context_pool": max(t)}
    for vad_pool, pooled in want.items():
        fusion = BEENetFusion(4, pool="max", vad_pool=vad_pool)
        _set_classifier(fusion, [0.0] * NUM_CATEGORIES, [1.0, 0.0, 0.0])
        out = fusion(torch.randn(1, 4), context, pr)
        assert out["vad_z"][0, 0].item() == pytest.approx(0.5 * 1.0 + 0.5 * (pooled - 5.0) / 2.0, rel=1e-6), vad_pool
    with pytest.raises(ConfigError, match="vad_context_pool"):
        BEENetFusion(4, vad_pool="median")


def test_pseudocount_shrinks_rare_contexts_toward_the_marginal() -> None:
    """Section 2.5: P+ = (N P(B, A) + m P(B)) / (N P(A) + m); m = 0 is the plain ratio."""
    c, y, v = _tiny_example()
    plain, shrunk = ContextPriors(3), ContextPriors(3, pseudocount=2.0)
    plain.fit(c, y, v)
    shrunk.fit(c, y, v)
    n = 4
    p_b0 = y[:, 0].mean()
    joint = (y[:, 0] * c[:, 0]).sum()  # N P(B_0, A_0)
    assert shrunk.p_pos[0, 0].item() == pytest.approx((joint + 2.0 * p_b0) / (c[:, 0].sum() + 2.0), rel=1e-6)
    assert plain.p_pos[0, 0].item() == pytest.approx(joint / c[:, 0].sum(), rel=1e-6)
    neg_joint = (y[:, 0] * (1 - c[:, 0])).sum()
    assert shrunk.p_neg[0, 0].item() == pytest.approx((neg_joint + 2.0 * p_b0) / ((1 - c[:, 0]).sum() + 2.0), rel=1e-6)
    vpos = (v[:, 0] * c[:, 0]).sum()
    assert shrunk.vad_pos[0, 0].item() == pytest.approx((vpos + 2.0 * v[:, 0].mean()) / (c[:, 0].sum() + 2.0), rel=1e-5)
    # Closer to the marginal than the plain ratio, and the guards are unchanged (never-seen context 1).
    assert abs(shrunk.p_pos[0, 0] - p_b0) < abs(plain.p_pos[0, 0] - p_b0)
    assert shrunk.p_pos[0, 1].item() == pytest.approx(p_b0, rel=1e-6)
    assert n == c.shape[0]
    with pytest.raises(BeenetError, match="pseudocount"):
        ContextPriors(3, pseudocount=-1.0)


def test_odds_form_is_a_probability_and_agrees_with_its_logits() -> None:
    pr = _hand_priors()
    for fusion in (BEENetFusion(4, pool="max", form="odds"), CAMoDEFusion(4, form="odds")):
        out = fusion(torch.randn(5, 4) * 3, torch.rand(5, 2), pr)
        assert ((out["categories"] > 0) & (out["categories"] < 1)).all()
        assert torch.allclose(out["categories"], torch.sigmoid(out["category_logits"]))


def test_changed_context_changes_the_beenet_output_only() -> None:
    pr = _hand_priors()
    feats = torch.randn(2, 4)
    a, b = torch.tensor([[0.9, 0.1]] * 2), torch.tensor([[0.1, 0.9]] * 2)
    beenet = BEENetFusion(4, pool="mean")
    assert not torch.allclose(beenet(feats, a, pr)["categories"], beenet(feats, b, pr)["categories"])
    assert not torch.allclose(beenet(feats, a, pr)["vad_z"], beenet(feats, b, pr)["vad_z"])
    none = NoFusion(4)
    assert torch.equal(none(feats, a, pr)["categories"], none(feats, None, pr)["categories"])
    concat = ConcatFusion(4, 2)
    assert not torch.allclose(concat(feats, a, pr)["categories"], concat(feats, b, pr)["categories"])


@pytest.mark.parametrize("pool", ["gem", "attention"])
def test_learnable_context_pools_start_at_the_average(pool: str) -> None:
    pr = ContextPriors(6)
    rng = np.random.default_rng(1)
    pr.fit(rng.random((30, 6)), rng.random((30, NUM_CATEGORIES)), 1 + 9 * rng.random((30, 3)))
    mean_fusion = BEENetFusion(8, pool="mean")
    other = BEENetFusion(8, pool=pool)
    other.classifier.load_state_dict(mean_fusion.classifier.state_dict())
    feats, context = torch.randn(3, 8), torch.rand(3, 6)
    a, b = mean_fusion(feats, context, pr), other(feats, context, pr)
    for key in ("categories", "category_logits", "vad_z"):
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_build_fusion_checks_its_arguments() -> None:
    assert isinstance(build_fusion("none", 8, 0), NoFusion)
    assert isinstance(build_fusion("concat", 8, 3), ConcatFusion)
    with pytest.raises(ConfigError, match="at least one context"):
        build_fusion("beenet", 8, 0)
    with pytest.raises(ConfigError, match="'sum'"):
        build_fusion("sum", 8, 3)
    with pytest.raises(ConfigError, match="context_pool"):
        build_fusion("beenet", 8, 3, context_pool="median")


# ------------------------------------------------------------ every fusion, by what it declares

J = 6  # contexts of the tiny examples below
DIM = 8


def _fitted_priors(trainable: bool = False, kind: str = "beenet", seed: int = 1) -> ContextPriors:
    rng = np.random.default_rng(seed)
    pr = build_priors(kind, J, trainable=trainable)
    pr.fit(rng.random((40, J)), rng.random((40, NUM_CATEGORIES)), 1 + 9 * rng.random((40, 3)))
    return pr


def _fusion(kind: str, seed: int = 0, **options) -> Fusion:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_fusion(kind, DIM, J, **({"context_pool": "mean", "form": "odds"} | options))


#: Every fused-score form (Eq. 16 and its readings), read off ``ModelConfig.fusion_form``.
FORMS = choices(ModelConfig, "fusion_form")
#: Options that change how a fusion reads its inputs (the readings of sections 2.6.1 and 2.7).
READINGS = [{}, {"camode_contexts": "classes"}, {"vad_context_pool": "mean"},
            {"vad_context_pool": "context_pool"}, {"parts": (4, 2)}]


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, DIM, generator=g), torch.rand(3, J, generator=g)


def test_fusion_names_are_the_config_choices() -> None:
    """``ModelConfig.fusion`` owns the names; they must be exactly the classes' table."""
    assert choices(ModelConfig, "fusion") == FUSION_KINDS == tuple(FUSIONS)
    for kind, cls in FUSIONS.items():
        assert fusion_class(kind) is cls and issubclass(cls, Fusion)
        assert fusion_reads_priors(kind) is cls.reads_priors
        assert not cls.reads_vad_priors or cls.reads_priors, kind  # VAD priors come with the priors
    with pytest.raises(ConfigError, match="model.fusion: 'sum' is not one of 'none', 'concat'"):
        fusion_class("sum")


def test_fusion_classes_register_under_declared_names_and_declare_what_they_need() -> None:
    """The import goes one way (fusion -> config): a class registers under a name the config
    declares, and callers ask it (``uses_context``) instead of matching names."""
    with pytest.raises(ConfigError, match="fusion 'sum' is not declared in ModelConfig.fusion"):
        register_fusion("sum")
    for cls in FUSIONS.values():
        assert cls.uses_context is (cls.reads_context or cls.reads_priors)
    assert [k for k, c in FUSIONS.items() if not c.uses_context] == ["none"]


def test_model_config_owns_the_fusion_defaults() -> None:
    """``ModelConfig``'s defaults are the only ones: ``FusionOptions`` and every constructor read them."""
    d, o = ModelConfig(), FusionOptions()
    assert (o.context_pool, o.lam, o.alpha, o.tau, o.form, o.camode_contexts, o.vad_context_pool) == (
        d.context_pool, d.prior_lambda, d.gate_alpha, d.gate_tau, d.fusion_form, d.camode_contexts,
        d.vad_context_pool)
    assert FusionOptions.from_config(d) == o
    owner = {"pool": o.context_pool, "lam": o.lam, "alpha": o.alpha, "tau": o.tau, "form": o.form,
             "contexts": o.camode_contexts, "vad_pool": o.vad_context_pool}
    for cls in FUSIONS.values():
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name in owner:
                assert p.default == owner[name], (cls.__name__, name)


@pytest.mark.parametrize("kind", FUSION_KINDS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("reading", READINGS, ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items()) or "default")
def test_every_fusion_forward_backward_shapes(kind: str, form: str, reading: dict) -> None:
    fusion = _fusion(kind, form=form, **reading)
    assert isinstance(fusion, fusion_class(kind))
    pr = _fitted_priors(trainable=True, kind=kind)
    features, context = _inputs()
    features.requires_grad_(True)
    out = fusion(features, context, pr)
    assert set(out) == {"category_logits", "categories", "vad_z"}
    assert out["category_logits"].shape == out["categories"].shape == (3, NUM_CATEGORIES)
    assert out["vad_z"].shape == (3, NUM_VAD)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key
    (out["category_logits"].sum() + out["categories"].sum() + out["vad_z"].sum()).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    # Every parameter, the trainable priors included, gets a gradient (DDP rejects those that do not).
    params = dict(fusion.named_parameters()) | {f"priors.{n}": p for n, p in pr.named_parameters()}
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_fitted_priors_change_the_output_exactly_when_declared(kind: str) -> None:
    cls = fusion_class(kind)
    fusion = _fusion(kind)
    features, context = _inputs()
    neutral = ContextPriors(J)
    with torch.no_grad():
        before, after = fusion(features, context, neutral), fusion(features, context, _fitted_priors())
    categories_changed = not torch.equal(before["categories"], after["categories"])
    vad_changed = not torch.equal(before["vad_z"], after["vad_z"])
    assert categories_changed is cls.reads_priors, kind
    assert vad_changed is cls.reads_vad_priors, kind


def test_camode_classes_reading_ignores_the_per_sample_context() -> None:
    fusion = _fusion("camode", camode_contexts="classes")
    features, context = _inputs()
    pr = _fitted_priors()
    with torch.no_grad():
        a, b = fusion(features, context, pr), fusion(features, torch.roll(context, 1, dims=1), pr)
    assert torch.equal(a["categories"], b["categories"])


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_per_sample_context_changes_the_output_exactly_when_declared(kind: str) -> None:
    cls = fusion_class(kind)
    fusion = _fusion(kind)
    features, context = _inputs()
    other = torch.roll(context, 1, dims=1)
    pr = _fitted_priors()
    with torch.no_grad():
        a, b = fusion(features, context, pr), fusion(features, other, pr)
    assert (not torch.equal(a["categories"], b["categories"])) is cls.reads_context, kind
    if cls.reads_context:
        with pytest.raises(BeenetError, match="context"):
            fusion(features, None, pr)


@pytest.mark.parametrize("kind", FUSION_KINDS)
@pytest.mark.parametrize("trainable", [False, True])
def test_trainable_priors_are_parameters_exactly_for_the_priors_a_fusion_reads(
    kind: str, trainable: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cls = fusion_class(kind)
    with caplog.at_level("WARNING", logger="beenet"):
        pr = build_priors(kind, J, trainable=trainable)
    expected = set()
    if trainable and cls.reads_priors:
        expected |= {"p_pos", "p_neg"}
    if trainable and cls.reads_vad_priors:
        expected |= {"vad_pos", "vad_neg"}
    assert {n for n, _ in pr.named_parameters()} == expected
    # The state dict is the same either way (a checkpoint loads whatever trainable_priors was).
    assert pr.state_dict().keys() == ContextPriors(J).state_dict().keys()
    assert ("has no effect" in caplog.text) is (trainable and not cls.reads_priors)


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_the_model_makes_the_priors_its_fusion_reads_trainable(kind: str, monkeypatch) -> None:
    """The model asks the fusion class, not its name: a fusion declaring priors gets them."""
    import beenet.models.beenet as beenet_module
    from beenet.models import build_model

    monkeypatch.setattr(beenet_module, "build_trunk", lambda backbone, pretrained: _TinyTrunk())
    cfg = ModelConfig(pretrained=False, image_size=32, stream_channels=8, stream_layers=1, kappa=4,
                      fusion=kind, trainable_priors=True, channels_last=False)
    model = build_model(cfg, seed=0)
    assert isinstance(model.fusion, fusion_class(kind))
    trainable = {n for n, _ in model.priors.named_parameters()}
    assert bool(trainable) is fusion_class(kind).reads_priors
    assert bool(trainable & {"vad_pos", "vad_neg"}) is fusion_class(kind).reads_vad_priors


class _TinyTrunk(torch.nn.Module):
    """Stride-16 stand-in for the GoogLeNet trunk (the fusion tests are not about the trunk)."""

    out_channels = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=16, stride=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_camode_scaffold_is_the_authors_gate_fitted_on_the_parts_confidence(monkeypatch) -> None:
    """``camode-scaffold``: P+ / P- over two contexts (scene, object) with confidence c_k = the part's
    max probability, p+- = max over the two, the gate, one prior per category for every sample;
    checked against the scaffold's formulas written out here (soft labels, no shrinkage)."""
    import beenet.models.beenet as beenet_module
    from beenet.labels import NUM_COCO, NUM_PLACES
    from beenet.models import build_model

    monkeypatch.setattr(beenet_module, "build_trunk", lambda backbone, pretrained: _TinyTrunk())
    cfg = ModelConfig(pretrained=False, image_size=32, stream_channels=8, stream_layers=1, kappa=4,
                      fusion="camode-scaffold", prior_pseudocount=0.0, channels_last=False)
    model = build_model(cfg, seed=0)
    g = torch.Generator().manual_seed(3)
    n = 12
    places = torch.softmax(3 * torch.randn(n, NUM_PLACES, generator=g), dim=1)
    objects = torch.softmax(torch.randn(n, NUM_COCO, generator=g), dim=1)
    y = torch.rand(n, NUM_CATEGORIES, generator=g)
    v = 1 + 9 * torch.rand(n, NUM_VAD, generator=g)
    model.fit_priors(torch.cat([places, objects], dim=1), y, v)
    assert tuple(model.priors.p_pos.shape) == (NUM_CATEGORIES, 2)
    conf = torch.stack([places.max(1).values, objects.max(1).values], dim=1).double()  # [n, 2]
    pi, q = y.double().mean(0), conf.mean(0)
    joint = y.double().T @ conf / n  # [26, 2]
    p_pos = (joint / q).clamp(0, 1).amax(1)
    p_neg = ((pi[:, None] - joint) / (1 - q)).clamp(0, 1).amax(1)
    gate = torch.sigmoid(10.0 * (p_pos - 0.5))
    fused = gate * p_pos + (1 - gate) * p_neg
    assert torch.allclose(model.fusion.prior(model.priors).double(), fused, atol=1e-6)
    # The same prior for every sample: the context of a sample changes nothing at run time.
    feats = torch.randn(3, model.fusion.classifier.in_features)
    a = model.fusion(feats, torch.rand(3, NUM_PLACES + NUM_COCO), model.priors)
    b = model.fusion(feats, torch.rand(3, NUM_PLACES + NUM_COCO), model.priors)
    assert torch.equal(a["categories"], b["categories"])
    z = model.fusion.classifier(feats)[:, :NUM_CATEGORIES]
    assert torch.allclose(a["categories"], fused.float() * z / 0.2, atol=1e-5)
