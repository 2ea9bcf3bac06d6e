"""BlazePose run directly on LiteRT (``ai-edge-litert``): mediapipe's person detector and full
landmark model, with the pre- and post-processing of mediapipe's pose graphs written out here.

mediapipe's Tasks ``PoseLandmarker`` (which beenet ran before) runs the same two tflite files
inside a calculator graph; on the 2-core machine this project is measured on, a 256x256 crop cost
39 ms there against 23 ms for the two models' own invocations, and 16 ms for a crop with nobody
in it against 9 ms (docs/predict.md, "Pose backends"). Nothing here imports the ``mediapipe``
package. :class:`BlazePose` runs the models with nothing around them:

- :meth:`BlazePose.detect`: the person detector (224x224 input in [-1, 1], 2254 SSD anchors) on a
  square window of the frame, letterboxed with black where the window leaves the frame; boxes and
  the 4 alignment keypoints decoded from the anchors, scores through a sigmoid, weighted
  non-maximum suppression (IoU 0.3), as mediapipe's ``pose_detection`` graph does.
- :func:`~beenet.inference.pose.boxes.roi_from_points`: the rotated square the landmark model
  looks at, from a detection's keypoints 0 (mid-hip) and 1 (the point that encodes size and rotation), or from the landmark
  model's own auxiliary landmarks 33 and 34 of the previous frame (tracking): centred on the first,
  side 2.5 times their distance (twice, then mediapipe's 1.25 margin), turned so that the body is
  upright.
- :meth:`BlazePose.landmarks`: the landmark model (256x256 input in [0, 1]) on that square, its 39
  landmarks mapped back to frame pixels, visibility and presence through a sigmoid, and the
  pose-presence flag (the model's second output, a probability already). Not done: the heat-map
  refinement of mediapipe's graph (a sub-pixel correction of each landmark) and the segmentation
  mask. The model computes both, plus world landmarks, in heads of their own: :func:`pruned_model`
  drops every operator that only those three outputs need before the interpreter is made, which
  leaves the two outputs read bit for bit the same and took a 256x256 crop from 16 ms to 9 ms on
  one thread (``benchmarks/bench_blazepose.py``).

One :class:`BlazePose` holds two interpreters, which are not thread-safe: use one per thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.boxes import Roi, roi_from_points
from beenet.inference.pose.models import LITE_MEMBER
from beenet.inference.pose.pruned import kept_pruned
from beenet.inference.pose.runtime import quiet_stderr

#: How to get a model file again (they are hash-checked in beenet's cache; a copy of one's own is not).
FETCH_HINT = "beenet models fetch"
#: The detector's and the landmark model's input side (px).
DETECTOR_SIDE = 224
LANDMARK_SIDE = 256
#: Weighted non-maximum suppression of the detector's boxes: IoU above which boxes merge.
NMS_IOU = 0.3
#: The landmark model's outputs: 39 landmarks (33 of the body, 33 and 34 the auxiliary alignment
#: points for the next frame's square, then 4 unused) of 5 values (x, y, z, visibility, presence).
NUM_LANDMARKS = 39


def ssd_anchor_centres() -> np.ndarray:
    """The centres ``(x, y)`` (normalised to the 224x224 input) of the detector's 2254 anchors, in
    the model's output order: mediapipe's ``SsdAnchorsCalculator`` with the pose detector's options
    (5 layers, strides 8, 16, 32, 32, 32, one aspect ratio plus the interpolated scale, fixed anchor
    size 1): layers of the same stride share a grid and give 2 anchors each per cell."""
    strides = (8, 16, 32, 32, 32)
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        side = math.ceil(DETECTOR_SIDE / strides[i])
        ys, xs = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(grid, per_cell, axis=0))
        i = j
    anchors = np.concatenate(out).astype(np.float32)
    assert len(anchors) == 2254, len(anchors)
    return anchors


@dataclass
class PersonDetection:
    """One detector hit, in frame pixels: score, box ``(x, y, w, h)`` (the face box the detector
    was trained on) and the 4 alignment keypoints ``(4, 2)``."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray

    def roi(self) -> Roi:
        return roi_from_points(self.keypoints[0], self.keypoints[1])

    def moved(self, dx: float, dy: float) -> PersonDetection:
        """The same detection, ``(dx, dy)`` pixels further (from a part of a frame to the frame)."""
        b = self.box
        return PersonDetection(self.score, (b[0] + dx, b[1] + dy, b[2], b[3]), self.keypoints + np.array([dx, dy]))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100.0, 100.0)))).astype(np.float32)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """mediapipe's WEIGHTED non-maximum suppression: the best remaining box and every box that
    overlaps it by more than ``iou`` are merged into their score-weighted mean (box and keypoints),
    with the best one's score. ``boxes``: ``(n, 4)`` as ``x0, y0, x1, y1``."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in range(len(scores)):
        if not alive[i]:
            continue
        ix = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = ix * iy
        overlap = inter / np.maximum(area[i] + area - inter, 1e-9)
        group = alive & (overlap > iou)
        group[i] = True
        w = scores[group][:, None]
        out.append((float(scores[i]), (boxes[group] * w).sum(0) / w.sum(),
                    (keypoints[group] * w[:, :, None]).sum(0) / w.sum()))
        alive &= ~group
    return out


#: The landmark model's outputs that :meth:`BlazePose.landmarks` reads (landmarks, presence flag).
LANDMARK_OUTPUTS = ("Identity", "Identity_1")


def pruned_model(data: bytes, outputs: tuple[str, ...]) -> bytes:
    """The tflite model ``data`` with only the graph outputs named ``outputs``, and without the
    operators that none of them needs (found backwards from those outputs). The interpreter runs
    every operator of a graph, read or not; what is kept computes exactly what it did."""
    import flatbuffers  # lazy: optional, installed with ai-edge-litert
    from ai_edge_litert import schema_py_generated as schema  # lazy: optional LiteRT runtime

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    graph = model.subgraphs[0]
    by_name = {graph.tensors[i].name.decode(): i for i in graph.outputs}
    missing = [name for name in outputs if name not in by_name]
    if missing:
        raise ValueError(f"no output named {', '.join(missing)} (it has {', '.join(sorted(by_name))})")
    made_by = {t: k for k, op in enumerate(graph.operators) for t in op.outputs}
    needed: set[int] = set()
    todo = [by_name[name] for name in outputs]
    while todo:
        k = made_by.get(todo.pop())
        if k is not None and k not in needed:
            needed.add(k)
            todo += [t for t in graph.operators[k].inputs if t >= 0]
    graph.operators = [op for k, op in enumerate(graph.operators) if k in needed]  # order kept
    graph.outputs = [by_name[name] for name in outputs]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_PRUNED: dict[tuple[str, float, int], bytes] = {}  # (path, mtime, size) -> the pruned landmark model


def _landmark_model(path: Path) -> bytes:
    """The landmark model at ``path``, pruned to :data:`LANDMARK_OUTPUTS` (once: :mod:`~beenet.inference.pose.pruned`)."""
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _PRUNED:
        _PRUNED[key] = kept_pruned(path.read_bytes(), LANDMARK_OUTPUTS, pruned_model)  # on disk: start-up
    return _PRUNED[key]


class BlazePose:
    """The two BlazePose models on LiteRT, one interpreter each (XNNPACK, ``num_threads`` threads).

    ``files``: the tflite files by the engine's names of
    :data:`beenet.inference.pose.models.MEMBERS` (``pose_detector.tflite``,
    ``pose_landmarks_detector.tflite``; ``pose_landmarks_lite.tflite`` too for the lite landmark
    model), as :func:`~beenet.inference.pose.models.find_model_files` returns them."""

    def __init__(self, files: dict[str, Path], num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: optional LiteRT runtime

        interpreters = []
        members = ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
        members += [LITE_MEMBER[0]] if LITE_MEMBER[0] in files else []
        for member in members:
            try:
                with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                    if member != "pose_detector.tflite":  # a landmark model: without the heads not read
                        it = Interpreter(model_content=_landmark_model(Path(files[member])), num_threads=num_threads)
                    else:
                        it = Interpreter(model_path=str(files[member]), num_threads=num_threads)
                    it.allocate_tensors()
            except Exception as exc:  # not a flatbuffer, not a tflite model, not this model
                raise BeenetError(f"{files[member]}: not a valid mediapipe pose model ({exc}); delete it and "
                                  f"fetch it again with: {FETCH_HINT}") from exc
            interpreters.append(it)
        self._det = interpreters[0]
        self._det_in = self._det.get_input_details()[0]["index"]
        det_out = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_boxes, self._det_scores = det_out["Identity"], det_out["Identity_1"]
        # per landmark model (full, then lite when given): (interpreter, input, points, flag)
        self._lms = [(it, it.get_input_details()[0]["index"],
                      *({d["name"]: d["index"] for d in it.get_output_details()}[n] for n in LANDMARK_OUTPUTS))
                     for it in interpreters[1:]]
        self._anchors = ssd_anchor_centres()

    @property
    def has_lite(self) -> bool:
        """Whether the lite landmark model was given (``landmarks(..., lite=True)`` runs it)."""
        return len(self._lms) > 1

    def detect(self, frame: np.ndarray, window: tuple[float, float, float], min_score: float,
               max_people: int | None = None) -> list[PersonDetection]:
        """People the detector finds in the square ``window = (x0, y0, side)`` of ``frame`` (RGB
        uint8; the window may leave the frame, where it sees black), best first, in frame
        pixels."""
        import cv2  # lazy: heavy, only when a model runs

        x0, y0, side = window
        f = DETECTOR_SIDE / side
        # frame -> input: q = (p - (x0, y0)) * f, bilinear, as mediapipe's image-to-tensor step
        m = np.array([[f, 0, -x0 * f], [0, f, -y0 * f]], np.float32)
        tensor = cv2.warpAffine(frame, m, (DETECTOR_SIDE, DETECTOR_SIDE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = tensor.astype(np.float32)
        x = (x - 127.5) / 127.5
        self._det.set_tensor(self._det_in, x[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0]
        scores = _sigmoid(self._det.get_tensor(self._det_scores)[0, :, 0])
        keep = scores >= min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        centre = raw[:, 0:2] / DETECTOR_SIDE + anchors
        size = raw[:, 2:4] / DETECTOR_SIDE
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_SIDE + anchors[:, None, :]
        out = []
        for score, b, k in weighted_nms(boxes, kps, scores)[:max_people]:
            b = b * side + np.array([x0, y0, x0, y0])
            out.append(PersonDetection(score, (float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])),
                                       k * side + np.array([x0, y0])))
        return out

    def landmarks(self, frame: np.ndarray, roi: Roi, lite: bool = False) -> tuple[float, np.ndarray]:
        """The landmark model on the rotated square ``roi`` of ``frame`` (RGB uint8; edge pixels
        repeated where the square leaves the frame): the pose-presence flag and ``(39, 4)``
        landmarks, ``x, y`` in frame pixels, visibility, presence. ``lite``: the lite model (the
        same input and outputs, about half the time), when it was given."""
        import cv2  # lazy: heavy, only when a model runs

        c, s = math.cos(roi.angle), math.sin(roi.angle)
        k = roi.side / LANDMARK_SIDE
        h = LANDMARK_SIDE / 2
        # input -> frame: p = centre + k * R(angle) (q - 128)
        a = np.array([[k * c, -k * s, roi.cx - k * (c * h - s * h)],
                      [k * s, k * c, roi.cy - k * (s * h + c * h)]], np.float64)
        crop = cv2.warpAffine(frame, a, (LANDMARK_SIDE, LANDMARK_SIDE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        lm, lm_in, lm_points, lm_flag = self._lms[-1 if lite else 0]
        lm.set_tensor(lm_in, (crop.astype(np.float32) * (1.0 / 255.0))[None])
        lm.invoke()
        flag = float(lm.get_tensor(lm_flag).ravel()[0])
        raw = lm.get_tensor(lm_points).reshape(NUM_LANDMARKS, 5)
        out = np.empty((NUM_LANDMARKS, 4), np.float32)
        out[:, 0] = a[0, 0] * raw[:, 0] + a[0, 1] * raw[:, 1] + a[0, 2]
        out[:, 1] = a[1, 0] * raw[:, 0] + a[1, 1] * raw[:, 1] + a[1, 2]
        out[:, 2] = _sigmoid(raw[:, 3])
        out[:, 3] = _sigmoid(raw[:, 4])
        return flag, out
