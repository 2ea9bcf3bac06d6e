"""ST-GCN skeleton stream over the 18 OpenPose joints (Yan, Xiong, Lin, AAAI 2018).

Input ``x[B, T, V=18, C]`` (``normalize_skeleton``: x, y, confidence) and ``mask[B, T, V]``; output
one feature vector per sample, pooled over joints and time with any pooling of the family (site b).

The graph is the 'openpose' layout of ST-GCN / pyskl (``beenet.labels.OPENPOSE_EDGES``, centre the
neck) with the paper's 'spatial' partitioning. Convention: ``A[k, v, w]`` is the weight of source
joint v in the update of joint w, so a graph convolution is ``y[..., w] = sum_k,v x_k[..., v] A[k, v, w]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from beenet.errors import ConfigError
from beenet.labels import NUM_JOINTS, OPENPOSE_CENTER, OPENPOSE_EDGES
from beenet.models.pooling import make_pool

__all__ = ["STRATEGIES", "Graph", "STGCN", "STGCNBlock"]

#: Partitioning strategies of the neighbour sets (Yan et al. 2018, section 3.3).
STRATEGIES: tuple[str, ...] = ("uniform", "distance", "spatial")


def _hop_distances(num_nodes: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """All-pairs shortest path lengths in hops (``inf`` between unconnected joints)."""
    neighbours: list[list[int]] = [[] for _ in range(num_nodes)]
    for i, j in edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    dist = np.full((num_nodes, num_nodes), np.inf)
    for start in range(num_nodes):
        dist[start, start] = 0
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in neighbours[node]:
                if np.isinf(dist[start, nxt]):
                    dist[start, nxt] = dist[start, node] + 1
                    queue.append(nxt)
    return dist


class Graph:
    """The skeleton graph and its partitioned, normalised adjacency ``A[K, V, V]`` (float32).

    ``strategy``: ``uniform`` (K = 1, one neighbour set), ``distance`` (K = max_hop + 1, one set
    per hop distance) or ``spatial`` (K = 3: the root itself, the centripetal group, i.e.
    neighbours closer to the centre than the root, and the centrifugal group, farther from it).
    Neighbourhoods are the joints within ``max_hop`` hops, self included; the adjacency is
    normalised by the neighbourhood size of the updated joint (``A D^-1``, columns of ``A.sum(0)``
    sum to 1) and then split, as in the reference implementation. Unlike that code, the distance
    to the centre is the full hop distance, not one truncated at ``max_hop`` (which sends most
    joints to the root set).
    """

    def __init__(self, layout: str = "openpose", strategy: str = "spatial", max_hop: int = 1) -> None:
        if layout != "openpose":
            raise ConfigError(f"skeleton graph layout {layout!r} is not supported; the only layout is 'openpose'")
        if strategy not in STRATEGIES:
            raise ConfigError(f"skeleton graph strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if isinstance(max_hop, bool) or not isinstance(max_hop, int) or max_hop < 1:
            raise ConfigError(f"skeleton graph max_hop must be a positive integer, got {max_hop!r}")
        self.layout = layout
        self.strategy = strategy
        self.max_hop = max_hop
        self.num_nodes = NUM_JOINTS
        self.edges: tuple[tuple[int, int], ...] = tuple(OPENPOSE_EDGES)
        self.center = OPENPOSE_CENTER
        self.hop = _hop_distances(self.num_nodes, self.edges)
        if np.isinf(self.hop).any():
            raise ConfigError("the skeleton graph is not connected; every joint needs a path to the centre")
        self.A = torch.from_numpy(self._partition().astype(np.float32))

    def _partition(self) -> np.ndarray:
        hop, v = self.hop, self.num_nodes
        adjacency = (hop <= self.max_hop).astype(np.float64)
        normalised = adjacency / adjacency.sum(axis=0, keepdims=True)  # column w / |N(w)|
        if self.strategy == "uniform":
            return normalised[None]
        if self.strategy == "distance":
            return np.stack([np.where(hop == d, normalised, 0.0) for d in range(self.max_hop + 1)])
        to_centre = hop[:, self.center]
        source = np.broadcast_to(to_centre[:, None], (v, v))  # distance of source v
        target = np.broadcast_to(to_centre[None, :], (v, v))  # distance of updated joint w
        root = np.where(source == target, normalised, 0.0)
        centripetal = np.where(source < target, normalised, 0.0)
        centrifugal = np.where(source > target, normalised, 0.0)
        return np.stack([root, centripetal, centrifugal])

    @property
    def num_subsets(self) -> int:
        return int(self.A.shape[0])


class STGCNBlock(nn.Module):
    """Spatial graph conv (learnable edge importance) then temporal conv, BN, ReLU, residual.

    ``x[B, C_in, T, V] -> [B, C_out, ceil(T / stride), V]``. The temporal conv has an odd kernel
    ``temporal_kernel`` with "same" padding, so with stride s the output has ceil(T / s) steps.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: Tensor,
        temporal_kernel: int = 9,
        stride: int = 1,
        dropout: float = 0.0,
        residual: bool = True,
        edge_importance: bool = True,
    ) -> None:
        super().__init__()
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise ConfigError(f"ST-GCN temporal_kernel must be a positive odd integer, got {temporal_kernel!r}")
        if stride < 1:
            raise ConfigError(f"ST-GCN stride must be a positive integer, got {stride!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ST-GCN dropout must be in [0, 1), got {dropout!r}")
        k = A.shape[0]
        self.stride = stride
        self.out_channels = out_channels
        self.register_buffer("A", A.clone().float(), persistent=False)  # rebuilt from the config
        self.importance = nn.Parameter(torch.ones_like(self.A)) if edge_importance else None
        self.gcn = nn.Conv2d(in_channels, out_channels * k, kernel_size=1)
        pad = (temporal_kernel - 1) // 2
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        b, _, t, v = x.shape
        adjacency = self.A if self.importance is None else self.A * self.importance
        y = self.gcn(x).view(b, adjacency.shape[0], self.out_channels, t, v)
        y = torch.einsum("bkctv,kvw->bctw", y, adjacency.to(y.dtype))
        y = self.tcn(y)
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


def _downsample_mask(mask: Tensor, stride: int) -> Tensor:
    """``mask[B, T, V] -> [B, ceil(T / stride), V]``: a step is real if any of its frames was."""
    if stride == 1:
        return mask
    b, t, v = mask.shape
    steps = -(-t // stride)
    padded = torch.zeros(b, steps * stride, v, dtype=torch.bool, device=mask.device)
    padded[:, :t] = mask
    return padded.view(b, steps, stride, v).any(dim=2)


class STGCN(nn.Module):
    """ST-GCN feature extractor: ``forward(x[B, T, 18, C], mask[B, T, 18]) -> [B, out_dim]``.

    Missing joints (mask False, or any non-finite coordinate) are zeroed before anything else, so
    their values never matter. Blocks follow ``channels``; the temporal stride is 2 wherever the
    channel count grows (as in ST-GCN) unless ``strides`` says otherwise. The final pooling over
    the T' x 18 positions (site b) is ``make_pool(pool, out_dim, **pool_kwargs)`` with the mask
    down-sampled alongside; a sample with no real position pools over all positions instead
    (its output is finite, and it is the same for every fully missing sample).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (32, 64, 128),
        temporal_kernel: int = 9,
        dropout: float = 0.0,
        pool: str = "mean",
        *,
        strides: Sequence[int] | None = None,
        strategy: str = "spatial",
        edge_importance: bool = True,
        pool_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or any(c < 1 for c in channels):
            raise ConfigError(f"ST-GCN channels must be a non-empty list of positive integers, got {channels!r}")
        if strides is None:
            strides = tuple(2 if i > 0 and c > channels[i - 1] else 1 for i, c in enumerate(channels))
        strides = tuple(int(s) for s in strides)
        if len(strides) != len(channels):
            raise ConfigError(f"ST-GCN strides {strides!r} must have one entry per block of channels {channels!r}")
        self.in_channels = in_channels
        self.channels = channels
        self.strides = strides
        self.graph = Graph("openpose", strategy)
        v = self.graph.num_nodes
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        blocks = []
        previous = in_channels
        for i, (c, s) in enumerate(zip(channels, strides)):
            blocks.append(
                STGCNBlock(
                    previous, c, self.graph.A, temporal_kernel, s, dropout,
                    residual=i > 0, edge_importance=edge_importance,
                )
            )
            previous = c
        self.blocks = nn.ModuleList(blocks)
        self.pool = make_pool(pool, channels[-1], **dict(pool_kwargs or {}))

    @property
    def out_dim(self) -> int:
        """Size of the feature vector ``forward`` returns."""
        return self.channels[-1]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        v = self.graph.num_nodes
        if x.dim() != 4 or x.shape[2] != v or x.shape[3] != self.in_channels:
            raise ValueError(
                f"ST-GCN expects skeletons of shape [B, T, {v}, {self.in_channels}], got {tuple(x.shape)}"
            )
        b, t = x.shape[:2]
        if mask is None:
            mask = torch.ones(b, t, v, dtype=torch.bool, device=x.device)
        elif mask.shape != (b, t, v):
            raise ValueError(f"ST-GCN mask must have shape {(b, t, v)} to match x {tuple(x.shape)}, got {tuple(mask.shape)}")
        mask = mask.bool() & torch.isfinite(x).all(dim=-1)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)

        # [B, T, V, C] -> BN over (V, C) per frame -> [B, C, T, V]
        y = x.permute(0, 2, 3, 1).reshape(b, v * self.in_channels, t)
        y = self.data_bn(y).view(b, v, self.in_channels, t).permute(0, 2, 3, 1).contiguous()
        for block in self.blocks:
            y = block(y)
            mask = _downsample_mask(mask, block.stride)
        d, steps = y.shape[1], y.shape[2]
        positions = y.permute(0, 2, 3, 1).reshape(b, steps * v, d)
        real = mask.reshape(b, steps * v)
        real = real | ~real.any(dim=1, keepdim=True)  # nothing real: pool over everything
        return self.pool(positions, real)
