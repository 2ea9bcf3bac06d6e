"""ST-GCN skeleton stream: the openpose graph partition and the masked forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beenet.errors import ConfigError
from beenet.labels import NUM_JOINTS, OPENPOSE_CENTER, OPENPOSE_EDGES
from beenet.models.pooling import POOL_KINDS
from beenet.models.stgcn import STGCN, Graph, STGCNBlock

B, T, V, C = 2, 16, NUM_JOINTS, 3
SMALL = (8, 16)


def _model(pool: str = "mean", seed: int = 0, **kw: object) -> STGCN:
    with torch.random.fork_rng():  # repeatable random init without touching the global RNG
        torch.manual_seed(seed)
        return STGCN(C, channels=kw.pop("channels", SMALL), pool=pool, **kw)


def _skeleton(seed: int = 0, t: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, t, V, C, generator=g)
    mask = torch.rand(B, t, V, generator=g) > 0.3
    return x, mask


def test_spatial_partition_properties() -> None:
    graph = Graph()
    A = graph.A.numpy()
    assert A.shape == (3, V, V) and A.dtype == np.float32 and graph.num_subsets == 3
    assert all(A[k].shape == (V, V) for k in range(3))
    # Normalised by the neighbourhood size of the updated joint: columns of sum_k A_k sum to 1.
    np.testing.assert_allclose(A.sum(axis=(0, 1)), np.ones(V), rtol=1e-6)
    support = A > 0
    total = support.any(0)
    np.testing.assert_array_equal(total, total.T)  # symmetric neighbourhoods
    expected = np.eye(V, dtype=bool)
    for i, j in OPENPOSE_EDGES:
        expected[i, j] = expected[j, i] = True
    np.testing.assert_array_equal(total, expected)  # exactly the limbs plus self loops
    assert not (support.sum(0) > 1).any()  # the three subsets are disjoint
    degree = expected.sum(0)
    np.testing.assert_allclose(A.sum(0)[expected], (1.0 / degree[None, :].repeat(V, 0))[expected], rtol=1e-6)
    # Root subset is the joint itself; centripetal and centrifugal mirror each other.
    np.testing.assert_array_equal(support[0], np.eye(V, dtype=bool))
    np.testing.assert_array_equal(support[1], support[2].T)
    hop = graph.hop[:, OPENPOSE_CENTER]
    src, dst = np.nonzero(support[1])
    assert len(src) == len(OPENPOSE_EDGES) and (hop[src] < hop[dst]).all()
    src, dst = np.nonzero(support[2])
    assert (hop[src] > hop[dst]).all()
    assert not support[1][:, OPENPOSE_CENTER].any()  # nothing is closer to the centre than the neck


def test_other_strategies_and_bad_graphs() -> None:
    assert Graph(strategy="uniform").A.shape == (1, V, V)
    distance = Graph(strategy="distance", max_hop=2).A
    assert distance.shape == (3, V, V)
    np.testing.assert_allclose(distance.sum(dim=(0, 1)).numpy(), np.ones(V), rtol=1e-6)
    spatial2 = Graph(max_hop=2).A
    np.testing.assert_allclose(spatial2.sum(dim=(0, 1)).numpy(), np.ones(V), rtol=1e-6)
    with pytest.raises(ConfigError, match="openpose"):
        Graph(layout="coco")
    with pytest.raises(ConfigError, match="spatial"):
        Graph(strategy="radial")
    with pytest.raises(ConfigError, match="odd"):
        STGCNBlock(3, 8, Graph().A, temporal_kernel=4)


def test_forward_backward_shapes() -> None:
    model = _model(channels=(8, 16, 32))
    assert model.out_dim == 32 and model.strides == (1, 2, 2)
    x, mask = _skeleton()
    x.requires_grad_(True)
    out = model(x, mask)
    assert out.shape == (B, 32) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(b.importance.grad.abs().sum()) > 0 for b in model.blocks)
    # Odd lengths and clips shorter than the stride still work.
    for t in (1, 3, 9):
        assert model(*_skeleton(t=t)).shape == (B, 32)


@pytest.mark.parametrize("train", [False, True])
def test_masked_joints_do_not_change_output(train: bool) -> None:
    model = _model()
    model.train(train)
    x, mask = _skeleton()
    g = torch.Generator().manual_seed(9)
    other = x.clone()
    other[~mask] = 1e3 * torch.randn(int((~mask).sum()), C, generator=g)
    other[0, 0, 0] = float("nan")  # a NaN coordinate counts as missing
    mask_nan = mask.clone()
    mask_nan[0, 0, 0] = False
    x_nan = x.clone()
    x_nan[0, 0, 0] = 0.0
    torch.testing.assert_close(model(other, mask), model(x_nan, mask_nan))
    # and a real joint does change it
    moved = x.clone()
    j = mask.nonzero()[0]
    moved[tuple(j)] += 5.0
    assert not torch.allclose(model(moved, mask), model(x, mask))


@pytest.mark.parametrize("pool", POOL_KINDS)
def test_every_pool_kind(pool: str) -> None:
    model = _model(pool=pool)
    x, mask = _skeleton()
    out = model(x, mask)
    assert out.shape == (B, model.out_dim) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("pool", ["mean", "max", "softpool", "attention"])
def test_fully_missing_sample_is_finite(pool: str) -> None:
    model = _model(pool=pool)
    x, mask = _skeleton()
    mask[1] = False
    x[1] = float("nan")
    x.requires_grad_(True)
    out = model(x, mask)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[1] == 0).all()
    model.eval()
    first = model(x.detach(), mask)
    x2 = x.detach().clone()
    x2[1] = 7.0
    torch.testing.assert_close(first, model(x2, mask))


def test_pool_sees_the_downsampled_mask() -> None:
    """A time step after a stride is real if any of its frames was; padded steps are not pooled."""
    model = _model(pool="max").eval()
    assert model.strides == (1, 2)
    x, _ = _skeleton(t=11)
    mask = torch.ones(B, 11, V, dtype=torch.bool)
    mask[0, 7:] = False  # frames 7..10 padded -> steps 3 (frames 6, 7) real, 4 and 5 padding
    mask[1, :, 5] = False  # a joint never seen
    seen: dict[str, torch.Tensor] = {}
    model.pool.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], mask=args[1]))
    out = model(x, mask)
    real = seen["mask"].view(B, 6, V)
    assert real[0, :4].all() and not real[0, 4:].any()
    assert real[1, :, np.arange(V) != 5].all() and not real[1, :, 5].any()
    expected = seen["x"].masked_fill(~seen["mask"][..., None], -torch.inf).amax(1)
    torch.testing.assert_close(out, expected)


def test_bad_input_shapes_raise() -> None:
    model = _model()
    x, mask = _skeleton()
    with pytest.raises(ValueError, match="18"):
        model(x[:, :, :17], mask[:, :, :17])
    with pytest.raises(ValueError, match="mask"):
        model(x, mask[:, :4])
    with pytest.raises(ConfigError):
        STGCN(channels=())
    with pytest.raises(ValueError, match="softpool"):
        STGCN(pool="median")
