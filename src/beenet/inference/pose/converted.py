"""A TF.js graph model converted to ONNX once, kept on disk, and run by onnxruntime.

The person detector (CenterNet, :mod:`~beenet.inference.pose.detector`) ships as a TF.js graph;
:mod:`~beenet.inference.pose.tfjs` runs it on torch, one Python call per node. onnxruntime runs
the same network about 2.4x faster on one CPU thread (31 against 76 ms at 384x224, docs/predict.md
"Speed"), and needs no torch: pass 1 of ``beenet predict`` then runs without torch.

The conversion traces the torch runner through torch's ONNX exporter (so the ONNX graph computes
exactly what the runner computes), with the image's height and width left free, then checks it:
onnxruntime on an input of another shape than the traced one must give the runner's outputs. The
ONNX file depends only on the model's files, the outputs, the channels kept and the code of the
runner and of this module, so it is kept under ``<cache root>/models/converted/`` by a key over
all of them (the :mod:`~beenet.inference.pose.pruned` cache: a damaged file is converted again).
Converting takes a few seconds (torch's import and the trace), once.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.pruned import kept_pruned
from beenet.paths import cache_dir

#: Largest difference allowed between onnxruntime's outputs and the torch runner's (the check).
TOLERANCE = 1e-3
#: The input shape the check runs (not the traced one: the free height and width are checked).
CHECK_SHAPE = (96, 160)


#: What a user whose conversion fails can do meanwhile (the same network, on torch).
TORCH_HINT = "run the person detector on torch instead with --pose-option person_engine=torch"


class ConversionError(BeenetError):
    """A TF.js graph whose ONNX conversion failed or does not compute what the graph does (the
    message says how to run it on torch meanwhile)."""


def converted_dir() -> Path:
    """``<cache root>/models/converted``."""
    return cache_dir("models") / "converted"


def conversion_key(model_json: Path, outputs: Sequence[str], keep: tuple[Sequence[str], int] | None) -> str:
    """SHA-256 over the model's files (``model.json`` and its shards), the outputs, the channels
    kept and the source of the modules that convert it (a changed runner makes a new key)."""
    try:
        spec = model_json.read_bytes()
        h = hashlib.sha256(spec)
        for group in json.loads(spec)["weightsManifest"]:
            for shard in group["paths"]:
                h.update((model_json.parent / shard).read_bytes())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConversionError(f"{model_json}: not a TF.js graph model with its weight files ({exc})") from exc
    h.update(repr((list(outputs), keep)).encode())
    for module in ("tfjs_spec.py", "tfjs.py", "converted.py"):
        h.update((Path(__file__).parent / module).read_bytes())
    return h.hexdigest()[:32]


def export_onnx(model_json: Path, outputs: Sequence[str], keep: tuple[Sequence[str], int] | None) -> bytes:
    """The ONNX bytes of the graph's ``outputs`` (after :meth:`TfjsGraph.keep_channels` ``keep``),
    its one image input ``image`` (NHWC float32) of free height and width; checked (module doc)."""
    import torch  # lazy: torch only converts, once per model and code; running needs onnxruntime

    from beenet.inference.pose.tfjs import TfjsGraph  # lazy: imports torch

    graph = TfjsGraph(model_json, outputs)
    if keep is not None:
        graph.keep_channels(*keep)
    name, shape = graph.image_input()

    class _Graph(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(graph.run({name: image}))

    names = [f"output{i}" for i in range(len(outputs))]
    free = {"image": {1: "height", 2: "width"}, **{n: {1: f"{n}_h", 2: f"{n}_w"} for n in names}}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values: the check below decides
            torch.onnx.export(_Graph(), (torch.zeros(1, *shape, 3),), buf, dynamo=False, input_names=["image"],
                              output_names=names, dynamic_axes=free, opset_version=17)
    except Exception as exc:  # the exporter raises many kinds
        raise ConversionError(f"{model_json}: the ONNX conversion failed ({type(exc).__name__}: {exc}); "
                              f"{TORCH_HINT}") from exc
    body = buf.getvalue()
    image = torch.rand(1, *CHECK_SHAPE, 3, generator=torch.Generator().manual_seed(0)) * 255
    want = [t.numpy() for t in graph.run({name: image})]
    got = OnnxGraph(body, model_json).run(image.numpy())
    for w, g, out in zip(want, got, outputs):
        if w.shape != g.shape or not np.allclose(w, g, atol=TOLERANCE, rtol=TOLERANCE):
            diff = float(np.abs(w - g).max()) if w.shape == g.shape else f"shape {g.shape} != {w.shape}"
            raise ConversionError(f"{model_json}: the ONNX graph's {out!r} differs from the graph's at "
                                  f"{CHECK_SHAPE} ({diff}); {TORCH_HINT}")
    return body


class OnnxGraph:
    """An ONNX graph of one image input run by onnxruntime on ``threads`` threads (its own
    pool, not torch's); ``run(image)`` gives its outputs as arrays. Thread-safe: calls serialised."""

    def __init__(self, body: bytes, source: Path | str, threads: int = 1) -> None:
        try:
            import onnxruntime as ort  # lazy: ~0.2 s, only when the detector is made
        except ImportError as exc:
            raise ConversionError(f"onnxruntime is not installed: pip install onnxruntime, or {TORCH_HINT}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(body, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise ConversionError(f"{source}: onnxruntime cannot load its ONNX graph ({exc}); {TORCH_HINT}") from exc
        self._input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            return self.session.run(None, {self._input: np.ascontiguousarray(image, np.float32)})


def converted_graph(model_json: str | Path, outputs: Sequence[str], keep: tuple[Sequence[str], int] | None = None,
                    threads: int = 1, folder: Path | None = None) -> OnnxGraph:
    """The graph ``model_json`` as an :class:`OnnxGraph`: its ONNX file read from ``folder``
    (default :func:`converted_dir`) when it was kept there before, else converted and kept."""
    model_json = Path(model_json)
    key = conversion_key(model_json, outputs, keep)

    def convert(_data: bytes, _outputs: tuple[str, ...]) -> bytes:
        return export_onnx(model_json, outputs, keep)

    body = kept_pruned(b"", tuple(outputs), convert, converted_dir() if folder is None else folder,
                       suffix=".onnx", key=key)
    return OnnxGraph(body, model_json, threads)
