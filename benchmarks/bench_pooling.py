"""Cost of every pooling at the model's sites: parameters added, forward+backward latency.

Sites (``docs/pooling.md``): (a) frames of a clip, B x N=16 frames x D=528 (GoogLeNet inception4d
channels; the stream heads use 384); (b) ST-GCN positions, N = T'(4) x 18 joints, D=128;
(c) contexts in the fusion, N = 445 contexts x D = 26 categories. A quarter of the samples are
padded to half length so the masked path is what gets timed. Latency is the median over
``--repeats`` runs of one forward + backward; the ratio is to average pooling at the same site.

Example:
    python benchmarks/bench_pooling.py --threads 2 --repeats 50
    python benchmarks/bench_pooling.py --sites a --dim-a 1024 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from beenet.models.pooling import POOL_KINDS, make_pool
from beenet.progress import progress


def _sites(args: argparse.Namespace) -> dict[str, tuple[int, int, int]]:
    every = {"a": (args.batch, 16, args.dim_a), "b": (args.batch, 4 * 18, 128), "c": (args.batch, 445, 26)}
    return {s: every[s] for s in args.sites.split(",")}


def _inputs(b: int, n: int, d: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, n, d, generator=g)  # non-negative, like ReLU features and probabilities
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[: max(1, b // 4), n // 2 :] = False
    return x.to(device), mask.to(device)


def time_pool(pool: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median milliseconds of one forward + backward."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    x = x.detach().requires_grad_(True)
    times = []
    for i in range(warmup + repeats):
        pool.zero_grad(set_to_none=True)
        x.grad = None
        sync()
        start = time.perf_counter()
        pool(x, mask).sum().backward()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Example:"):],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sites", default="a,b,c", help="comma-separated sites among a, b, c (default: a,b,c)")
    parser.add_argument("--batch", type=int, default=8, help="batch size B (default: 8)")
    parser.add_argument("--dim-a", type=int, default=528, help="channels D at site a (default: 528)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per pooling (default: 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and of the initialisation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    jobs = [(site, shape, kind) for site, shape in _sites(args).items() for kind in POOL_KINDS]
    for site, (b, n, d), kind in progress(jobs, desc="pooling"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            pool = make_pool(kind, d, init_average=False).to(device)
        x, mask = _inputs(b, n, d, device, args.seed)
        ms = time_pool(pool, x, mask, args.repeats, args.warmup)
        rows.append((site, f"{b}x{n}x{d}", kind, sum(p.numel() for p in pool.parameters()), ms))
    base = {site: ms for site, _, kind, _, ms in rows if kind == "avg"}
    print(f"device={device} threads={args.threads} torch={torch.__version__} repeats={args.repeats}")
    print(f"{'site':<5}{'B x N x D':<14}{'pooling':<11}{'params':>10}{'fwd+bwd ms':>12}{'x avg':>8}")
    for site, shape, kind, params, ms in rows:
        print(f"{site:<5}{shape:<14}{kind:<11}{params:>10,}{ms:>12.3f}{ms / base[site]:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
