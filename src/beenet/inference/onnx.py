"""ONNX export of a checkpoint (the engine that runs it is in :mod:`beenet.inference.engines`).

The model takes a dict; ONNX wants positional tensors. :class:`PositionalModel` wraps the model so
its inputs are, in order, ``frames, frame_mask`` and then ``crops``, ``skeleton, skeleton_mask``,
``context`` when the model needs them (:func:`model_input_names`); its outputs are
``categories, vad`` and one ``stream.<name>`` per stream. The batch axis is dynamic. The exported
file describes itself: the model name, checkpoint hash, beenet version and the full run config are
in its ``metadata_props``, so ``beenet predict --engine onnx --checkpoint model.onnx`` needs nothing
else.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from beenet.artifacts.pretrained import checkpoint_sha256
from beenet.artifacts.provenance import trained_on
from beenet.artifacts.loader import load_model
from beenet.artifacts.spec import ModelSpec, spec_from_checkpoint
from beenet.atomic import atomic_path
from beenet.errors import BeenetError
from beenet.inference.engines import OnnxEngine, TorchEngine, check_outputs
from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_JOINTS
from beenet.version import __version__

log = logging.getLogger(__name__)

OPSET = 17


def dummy_batch(spec: ModelSpec, batch_size: int = 2, generator: torch.Generator | None = None,
                partial_masks: bool = False) -> dict[str, torch.Tensor]:
    """Random inputs of the right shapes (export tracing, parity tests).

    ``partial_masks`` pads the last frame of the first item and drops random joints, as predict
    does for people seen in fewer frames than the model samples.
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    B, T, S = batch_size, spec.num_frames, spec.image_size
    out: dict[str, torch.Tensor] = {
        "frames": torch.randn(B, T, 3, S, S, generator=g),
        "frame_mask": torch.ones(B, T, dtype=torch.bool),
    }
    if partial_masks and T > 1:
        out["frame_mask"][0, -1] = False
        out["frames"][0, -1] = 0.0
    names = spec.input_names
    if "crops" in names:
        C = spec.crop_size
        out["crops"] = torch.randn(B, T, 3, C, C, generator=g)
    if "skeleton" in names:
        Ts = spec.skeleton_frames
        out["skeleton"] = torch.randn(B, Ts, NUM_JOINTS, 3, generator=g)
        out["skeleton_mask"] = torch.ones(B, Ts, NUM_JOINTS, dtype=torch.bool)
        if partial_masks:
            out["skeleton_mask"] = torch.rand(B, Ts, NUM_JOINTS, generator=g) > 0.3
            out["skeleton"] = out["skeleton"] * out["skeleton_mask"][..., None]
    if "context" in names:
        c = torch.rand(B, CONTEXT_DIM, generator=g)
        for sl in CONTEXT_SLICES.values():
            c[:, sl] /= c[:, sl].sum(1, keepdim=True)
        out["context"] = c
    return out


class PositionalModel(nn.Module):
    """``model(dict)`` as ``forward(*tensors) -> (categories, vad, *streams)`` for ONNX."""

    def __init__(self, model: nn.Module, input_names: list[str], stream_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.stream_names = list(stream_names)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(dict(zip(self.input_names, tensors)))
        return (out["categories"], out["vad"], *(out["streams"][s] for s in self.stream_names))


def stream_names_of(model: nn.Module, spec: ModelSpec) -> list[str]:
    """The names in ``model(batch)["streams"]``, in the order the model returns them."""
    with torch.inference_mode():
        out = model(dummy_batch(spec, 1))
    return list((out.get("streams") or {}).keys())


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = OPSET) -> Path:
    """Export ``checkpoint`` to ONNX at ``out`` (dynamic batch; metadata inside). Returns ``out``."""
    try:
        import onnx  # lazy: onnx is the optional 'onnx' extra
    except ImportError as exc:
        raise BeenetError("ONNX export needs the onnx package: pip install 'beenet[onnx]'") from exc

    checkpoint, out = Path(checkpoint), Path(out)
    model, ckpt = load_model(checkpoint, "cpu")
    spec = spec_from_checkpoint(ckpt, checkpoint_sha256(checkpoint), checkpoint)
    model.eval()
    streams = stream_names_of(model, spec)
    wrapper = PositionalModel(model, spec.input_names, streams).eval()
    batch = dummy_batch(spec, 2)
    args = tuple(batch[n] for n in spec.input_names)
    outputs = ["categories", "vad"] + [f"stream.{s}" for s in streams]
    axes = {n: {0: "batch"} for n in spec.input_names + outputs}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:  # a failed export leaves no partial file
        with torch.no_grad(), warnings.catch_warnings():
            # Shape checks in the model become constants of the trace, which is what we want.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                wrapper, args, str(tmp), input_names=spec.input_names, output_names=outputs,
                dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True,
            )
        proto = onnx.load(str(tmp))
        meta = {
            "beenet.model": spec.name,
            "beenet.checkpoint_sha256": spec.checkpoint_sha256,
            "beenet.beenet_version": __version__,
            "beenet.config": json.dumps(spec.config, default=str),
            "beenet.inputs": json.dumps(spec.input_names),
            "beenet.streams": json.dumps(streams),
            "beenet.trained_on": json.dumps(trained_on(ckpt)),
        }
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, str(tmp))
    log.info("exported %s -> %s (inputs %s, outputs %s)", checkpoint, out, spec.input_names, outputs)
    return out


def onnx_parity(checkpoint: str | Path, onnx_path: str | Path, batch_sizes: tuple[int, ...] = (1, 3),
                seed: int = 0) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs on random batches."""
    model, ckpt = load_model(checkpoint, "cpu")
    spec = spec_from_checkpoint(ckpt, checkpoint_sha256(checkpoint), checkpoint)
    torch_engine, ort_engine = TorchEngine(model, torch.device("cpu")), OnnxEngine(onnx_path)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batch_sizes:
        batch = dummy_batch(spec, b, g, partial_masks=True)
        a, o = torch_engine(batch), ort_engine(batch)
        check_outputs(a, checkpoint, "under PyTorch")
        check_outputs(o, onnx_path, "under ONNX Runtime")
        for key in ("categories", "vad"):
            worst = max(worst, float(np.abs(a[key] - o[key]).max()))
        for name, arr in a["streams"].items():
            worst = max(worst, float(np.abs(arr - o["streams"][name]).max()))
    return worst
