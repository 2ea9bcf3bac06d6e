"""The engines that run a model in ``beenet predict``: PyTorch or ONNX Runtime, one interface.

An engine is called with a batch dict of numpy arrays or CPU tensors (the inputs the model reads, see
:func:`beenet.inference.onnx.model_input_names`) and returns numpy ``categories [B, 26]``,
``vad [B, 3]`` and ``streams {name: [B, 29]}``. :data:`ENGINES` is the list of engine names;
torch and onnxruntime are imported when an engine is used, so the list costs nothing to read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.errors import BeenetError, CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)


def _onnxruntime() -> Any:
    try:
        import onnxruntime as ort  # lazy: onnxruntime is the optional 'onnx' extra
    except ImportError as exc:
        raise BeenetError("the onnx engine needs onnxruntime: pip install 'beenet[onnx]'") from exc
    return ort


class TorchEngine:
    """Runs the PyTorch model: batch dict of numpy arrays (or CPU tensors) -> dict of numpy outputs."""

    name = "torch"

    def __init__(self, model: "nn.Module", device: "torch.device") -> None:
        self.model = model.eval().to(device)
        self.device = device

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        import torch  # lazy: ENGINES is read by 'beenet predict --help', which must not load torch

        with torch.inference_mode():
            out = self.model({k: torch.as_tensor(v).to(self.device, non_blocking=True) for k, v in batch.items()})
        return {
            "categories": out["categories"].float().cpu().numpy(),
            "vad": out["vad"].float().cpu().numpy(),
            "streams": {k: v.float().cpu().numpy() for k, v in (out.get("streams") or {}).items()},
        }


class OnnxEngine:
    """Runs an exported model with ONNX Runtime (CUDA provider when asked for and installed)."""

    name = "onnx"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        ort = _onnxruntime()
        self.path = Path(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                log.warning("onnxruntime has no CUDA provider here; running the ONNX model on the CPU")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{self.path}: onnxruntime cannot load this model ({exc})") from exc
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        feed = {}
        for name in self.input_names:
            if name not in batch:
                raise BeenetError(f"{self.path}: the ONNX model needs input {name!r}, which the batch lacks")
            value = batch[name]
            feed[name] = np.ascontiguousarray(value.cpu().numpy() if hasattr(value, "cpu") else value)
        values = self.session.run(self.output_names, feed)
        res = dict(zip(self.output_names, values))
        return {
            "categories": res["categories"],
            "vad": res["vad"],
            "streams": {k[len("stream."):]: v for k, v in res.items() if k.startswith("stream.")},
        }


def check_outputs(res: Mapping[str, Any], model: str | Path, what: str = "") -> None:
    """Raise :class:`CheckpointError` naming the model when an engine's outputs hold NaN or inf
    (broken weights, or an export that went wrong): a table of empty scores is never written."""
    arrays = [("categories", res["categories"]), ("vad", res["vad"]),
              *((f"stream {k}", v) for k, v in (res.get("streams") or {}).items())]
    for name, arr in arrays:
        bad = ~np.isfinite(np.asarray(arr, dtype=np.float64))
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise CheckpointError(
                f"{model}: the model produced NaN/inf {name} ({int(bad.sum())} value(s), first in batch row "
                f"{row}){' ' + what if what else ''}; its weights are broken (diverged training or a damaged "
                "file): use another checkpoint"
            )


#: Engine name -> class (the ``engine`` choices of :class:`~beenet.inference.predictor.Predictor`).
ENGINES: dict[str, type] = {TorchEngine.name: TorchEngine, OnnxEngine.name: OnnxEngine}
