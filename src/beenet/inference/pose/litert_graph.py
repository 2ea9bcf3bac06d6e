"""A TF.js graph model written out as a LiteRT (tflite) model, and run by LiteRT.

The person detector (CenterNet, :mod:`~beenet.inference.pose.detector`) ships as a TF.js graph.
Its ops are TensorFlow's, so each has a LiteRT builtin that computes the same thing in the same
NHWC layout: a convolution with TensorFlow's ``SAME`` padding and a fused ReLU, a depthwise
convolution, broadcasting ``ADD`` / ``MUL``, ``RELU6``, ``MEAN``, TF1's legacy bilinear resize
(``align_corners`` and ``half_pixel_centers`` both off) and a concatenation. :func:`tflite_model`
maps the nodes an output needs one to one onto those builtins (weights laid out as LiteRT wants
them), for an input of one fixed height and width; LiteRT then runs the whole network on its
XNNPACK delegate, the engine that already runs BlazePose's models here. No TensorFlow, torch or
onnxruntime is needed, and writing the model takes about 0.1 s, so :class:`LiteRTGraph` writes
one per input shape when it first meets it (a video needs one or two) and keeps it in memory.

On a 512x288 input, one thread, this 2-core machine: about 25 ms a call against 33 ms for the
graph's ONNX conversion on onnxruntime (docs/predict.md, "Speed"); outputs within 1e-5 of
onnxruntime's (relative). A graph with an op not mapped here is refused when it is loaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beenet.inference.pose.runtime import quiet_stderr
from beenet.inference.pose.tfjs_spec import TfjsGraphError, TfjsSpec, attr

#: The TF.js ops written out (the person detector's: a graph needing another is refused).
CONVS = ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")
BINARY = ("Add", "AddV2", "Mul")
UNARY = ("Relu", "Relu6", "Sigmoid")
KNOWN = frozenset((*CONVS, *BINARY, *UNARY, "Mean", "ResizeBilinear", "ConcatV2", "Identity"))
#: A LiteRT model's interpreters kept per input shape (the oldest dropped beyond this).
KEPT_SHAPES = 4
#: What a user whose LiteRT model fails can do meanwhile.
ONNX_HINT = "run the person detector on onnxruntime instead with --pose-option person_engine=onnx"


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated  # lazy: optional LiteRT runtime

    return schema_py_generated


class _Writer:
    """One LiteRT model being written: its tensors, buffers, operator codes and operators."""

    def __init__(self, spec: TfjsSpec) -> None:
        self.s = s = _schema()
        self.spec = spec
        self.model = s.ModelT()
        self.model.version = 3
        self.model.buffers = [s.BufferT()]  # buffer 0: no data (a tensor computed at run time)
        self.model.operatorCodes = []
        self.graph = s.SubGraphT()
        self.graph.tensors, self.graph.operators = [], []
        self.model.subgraphs = [self.graph]
        self.shapes: list[list[int]] = []
        self._codes: dict[int, int] = {}
        self.values: dict[str, int] = {}  # node -> its tensor
        self._consts: dict[str, int] = {}

    def tensor(self, name: str, shape: Sequence[int], data: np.ndarray | None = None) -> int:
        """A new tensor (a float32 or int32 constant when ``data`` is given); its index."""
        s = self.s
        t = s.TensorT()
        t.name, t.shape = name.encode(), [int(v) for v in shape]
        t.type = s.TensorType.INT32 if data is not None and data.dtype == np.int32 else s.TensorType.FLOAT32
        t.buffer = 0
        if data is not None:
            buf = s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            t.buffer = len(self.model.buffers)
            self.model.buffers.append(buf)
        self.graph.tensors.append(t)
        self.shapes.append([int(v) for v in shape])
        return len(self.graph.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options: Any = None) -> None:
        """Operator ``code`` (a ``BuiltinOperator``) from ``inputs`` to ``outputs``; ``options``: its
        ``...OptionsT``, whose class names its union type."""
        s = self.s
        if code not in self._codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            self._codes[code] = len(self.model.operatorCodes)
            self.model.operatorCodes.append(c)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self._codes[code], inputs, outputs
        if options is not None:
            o.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.graph.operators.append(o)

    def const(self, ref: str) -> np.ndarray:
        """The value of constant ``ref`` (a node name, maybe with ``:0``)."""
        name = ref.split(":")[0]
        if name not in self.spec.consts:
            raise TfjsGraphError(f"{self.spec.path}: {name!r} is not a constant (LiteRT needs it fixed)")
        return self.spec.consts[name]

    def value(self, ref: str) -> int:
        """The tensor of input ``ref``: a node's output, or a constant written once."""
        name = ref.split(":")[0]
        if name in self.values:
            return self.values[name]
        if name not in self._consts:
            a = self.const(name)
            a = a.astype(np.int32) if a.dtype.kind in "iub" else a.astype(np.float32)
            self._consts[name] = self.tensor(name, a.shape, a)
        return self._consts[name]

    def finish(self, outputs: Sequence[str]) -> bytes:
        import flatbuffers  # lazy: installed with ai-edge-litert

        self.graph.outputs = [self.value(o) for o in outputs]
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _conv(w: _Writer, name: str, node: dict, inputs: list[str]) -> int:
    """A (fused) convolution or depthwise convolution: weights to LiteRT's layout (OHWI, or
    1HW(C*M) for a depthwise one), the bias (zeros without ``BiasAdd``), one fused activation."""
    s, depthwise = w.s, "Depthwise" in node["op"]
    x, kernel = w.value(inputs[0]), w.const(inputs[1])
    fused = attr(node, "fused_ops", []) or []
    acts = [f for f in fused if f != "BiasAdd"]
    padding = attr(node, "padding", "VALID")
    if len(acts) > 1 or any(a not in ("Relu", "Relu6") for a in acts) or padding not in ("SAME", "VALID") \
            or attr(node, "data_format", "NHWC") != "NHWC":
        raise TfjsGraphError(f"{w.spec.path}: node {name!r} ({padding} padding, fused {fused}) has no LiteRT form here")
    strides = attr(node, "strides", [1, 1, 1, 1])[1:3]
    dilations = (attr(node, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1])[1:3]
    kh, kw, cin, cout = kernel.shape
    if depthwise:  # (kh, kw, in, multiplier): output channel c * multiplier + m
        weight, cout = kernel.reshape(1, kh, kw, cin * cout), cin * cout
        options = s.DepthwiseConv2DOptionsT()
        options.depthMultiplier = kernel.shape[3]
    else:  # (kh, kw, in, out) -> (out, kh, kw, in)
        weight, options = kernel.transpose(3, 0, 1, 2), s.Conv2DOptionsT()
    bias = w.const(inputs[2]) if "BiasAdd" in fused else np.zeros(cout, np.float32)
    options.padding = s.Padding.SAME if padding == "SAME" else s.Padding.VALID
    options.strideH, options.strideW = strides
    options.dilationHFactor, options.dilationWFactor = dilations
    options.fusedActivationFunction = getattr(s.ActivationFunctionType, acts[0].upper() if acts else "NONE")
    _, h, wd, _ = w.shapes[x]
    if padding == "SAME":
        oh, ow = -(-h // strides[0]), -(-wd // strides[1])
    else:
        oh = (h - (kh - 1) * dilations[0] - 1) // strides[0] + 1
        ow = (wd - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    out = w.tensor(name, [1, oh, ow, cout])
    code = s.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else s.BuiltinOperator.CONV_2D
    w.op(code, [x, w.tensor(f"{name}/weights", weight.shape, weight.astype(np.float32)),
                w.tensor(f"{name}/bias", [cout], bias.astype(np.float32))], [out], options)
    return out


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    return [max(x, y) for x, y in zip(a, b)]


def _node(w: _Writer, name: str, node: dict, inputs: list[str], ratio: tuple[float, float]) -> int:
    """The tensor of one node that is not a convolution (written out; ``Identity``: its input)."""
    s, op = w.s, node["op"]
    ops = s.BuiltinOperator
    if op == "Identity":
        return w.value(inputs[0])
    if op in BINARY:
        a, b = w.value(inputs[0]), w.value(inputs[1])
        out = w.tensor(name, _broadcast(w.shapes[a], w.shapes[b]))
        w.op(ops.MUL if op == "Mul" else ops.ADD, [a, b], [out], s.MulOptionsT() if op == "Mul" else s.AddOptionsT())
        return out
    if op in UNARY:
        a = w.value(inputs[0])
        out = w.tensor(name, w.shapes[a])
        w.op({"Relu": ops.RELU, "Relu6": ops.RELU6, "Sigmoid": ops.LOGISTIC}[op], [a], [out])
        return out
    a = w.value(inputs[0])
    shape = w.shapes[a]
    if op == "Mean":
        axes = sorted({int(v) % len(shape) for v in np.atleast_1d(w.const(inputs[1]))})
        options = s.ReducerOptionsT()
        options.keepDims = bool(attr(node, "keep_dims", False))
        kept = [1 if i in axes else d for i, d in enumerate(shape)]
        out = w.tensor(name, kept if options.keepDims else [d for i, d in enumerate(shape) if i not in axes])
        w.op(ops.MEAN, [a, w.tensor(f"{name}/axes", [len(axes)], np.array(axes, np.int32))], [out], options)
        return out
    if op == "ResizeBilinear":
        size = np.round(w.const(inputs[1]).astype(np.float64) * ratio).astype(np.int32)
        options = s.ResizeBilinearOptionsT()
        options.alignCorners = bool(attr(node, "align_corners", False))
        options.halfPixelCenters = bool(attr(node, "half_pixel_centers", False))
        out = w.tensor(name, [shape[0], int(size[0]), int(size[1]), shape[3]])
        w.op(ops.RESIZE_BILINEAR, [a, w.tensor(f"{name}/size", [2], size)], [out], options)
        return out
    # ConcatV2: the inputs, then the axis
    parts = [w.value(i) for i in inputs[:-1]]
    options = s.ConcatenationOptionsT()
    options.axis = int(w.const(inputs[-1])) % len(shape)
    joined = list(shape)
    joined[options.axis] = sum(w.shapes[p][options.axis] for p in parts)
    out = w.tensor(name, joined)
    w.op(ops.CONCATENATION, parts, [out], options)
    return out


def tflite_model(spec: TfjsSpec, height: int, width: int) -> bytes:
    """The LiteRT model (tflite flatbuffer bytes) of ``spec``'s outputs for one NHWC float32
    image input of ``height`` x ``width`` (the channels the graph declares, else 3; its fixed
    resize targets scaled as the torch runner scales them); its one input is the graph's, its
    outputs ``spec.outputs`` in order."""
    w = _Writer(spec)
    name, _ = spec.image_input()
    declared = spec.declared_shape(name)
    channels = declared[3] if len(declared) == 4 and declared[3] > 0 else 3
    w.graph.inputs = [w.tensor(name, [1, int(height), int(width), channels])]
    w.values[name] = w.graph.inputs[0]
    ratio = spec.ratio(name, height, width)
    for node_name in spec.order:
        node = spec.nodes[node_name]
        if node["op"] in ("Const", "Placeholder"):
            continue
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        if node["op"] in CONVS:
            w.values[node_name] = _conv(w, node_name, node, inputs)
        else:
            w.values[node_name] = _node(w, node_name, node, inputs, ratio)
    return w.finish(spec.outputs)


class LiteRTGraph:
    """A TF.js graph run by LiteRT on ``threads`` threads: ``run(image)`` (NHWC float32, one
    image) gives its outputs as arrays. The model for an input shape is written when that shape
    first comes (:func:`tflite_model`, about 0.1 s), and its interpreter kept (the last
    :data:`KEPT_SHAPES` shapes). ``keep``: ``(constants, channel)`` for
    :meth:`~beenet.inference.pose.tfjs_spec.TfjsSpec.keep_channels`. Thread-safe: calls
    serialised."""

    def __init__(self, model_json: str | Path, outputs: Sequence[str],
                 keep: tuple[Sequence[str], int] | None = None, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter  # lazy: optional LiteRT runtime
        except ImportError as exc:
            raise TfjsGraphError(f"ai-edge-litert is not installed: pip install ai-edge-litert, or {ONNX_HINT}") from exc
        self._interpreter = Interpreter
        self.spec = TfjsSpec(model_json, outputs, KNOWN)
        if keep is not None:
            self.spec.keep_channels(*keep)
        self.threads = threads
        self._kept: OrderedDict[tuple[int, int], tuple[Any, int, list[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def _for(self, height: int, width: int) -> tuple[Any, int, list[int]]:
        key = (height, width)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        body = tflite_model(self.spec, height, width)
        try:
            with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                it = self._interpreter(model_content=body, num_threads=self.threads)
                it.allocate_tensors()
        except Exception as exc:  # LiteRT raises RuntimeError / ValueError
            raise TfjsGraphError(f"{self.spec.path}: LiteRT cannot run the model written from it at "
                                 f"{height}x{width} ({exc}); {ONNX_HINT}") from exc
        outputs = [d["index"] for d in it.get_output_details()]
        self._kept[key] = (it, it.get_input_details()[0]["index"], outputs)
        while len(self._kept) > KEPT_SHAPES:
            self._kept.popitem(last=False)
        return self._kept[key]

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        image = np.ascontiguousarray(image, np.float32)
        with self._lock:
            it, index, outputs = self._for(int(image.shape[1]), int(image.shape[2]))
            it.set_tensor(index, image)
            it.invoke()
            return [it.get_tensor(i) for i in outputs]
