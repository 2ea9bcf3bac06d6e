"""``--pose rcnn``: torchvision's Keypoint R-CNN (ResNet-50 FPN, COCO-17 keypoints), every person
in the frame, on the predictor's device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from beenet.inference.pose.base import PoseBackend, PoseBackendBase
from beenet.inference.pose.keypoints import PoseDetection, coco17_to_openpose, detection_from_keypoints


class KeypointRCNNPose(PoseBackendBase):
    """torchvision Keypoint R-CNN (ResNet-50 FPN, COCO-17 keypoints): every person in the frame.

    ``weights="DEFAULT"`` (or ``"COCO_V1"`` / ``"COCO_LEGACY"``) loads torchvision's COCO weights:
    downloaded once into ``cache_dir`` (default torch hub's checkpoint folder), read with
    ``weights_only=True`` into the network torchvision builds for them; :attr:`weights_record`
    then names the file and its SHA-256. ``weights=None`` builds a randomly initialised network
    (tests only: it finds nobody real). Keypoint scores are heat-map logits, mapped to (0, 1) with
    a sigmoid to serve as confidences.
    """

    name = "rcnn"
    needs_pixels = True
    install_hint = ("run once with internet to download torchvision's Keypoint R-CNN weights into "
                    "$TORCH_HOME/hub/checkpoints, or copy the file there")

    def __init__(self, weights: str | None = "DEFAULT", device: str = "cpu",
                 score_threshold: float = 0.7, max_size: int = 800,
                 cache_dir: str | Path | None = None) -> None:
        import torch  # lazy: heavy; only this backend needs it here
        from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights  # lazy: heavy torchvision

        from beenet.weights import build_torchvision_detector, load_published  # lazy: beenet.weights imports torch

        w = None if weights is None else KeypointRCNN_ResNet50_FPN_Weights.verify(weights)
        self.model = build_torchvision_detector(
            "keypointrcnn_resnet50_fpn", w, min_size=min(640, max_size), max_size=max_size
        )
        #: The weights file the network was loaded from (None: random init).
        self.weights_record = None
        if w is not None:
            self.weights_record = load_published(
                self.model, w.url, "Keypoint R-CNN weights", cache_dir=cache_dir,
                offline_hint="or use --pose mediapipe (its model files: 'beenet models fetch')",
            )
        self.device = torch.device(device)
        self.model.eval().requires_grad_(False).to(self.device)
        self.score_threshold = score_threshold

    @classmethod
    def build(cls, device: str, weights: str | None, **options: Any) -> PoseBackend:
        """Keypoint R-CNN on the predictor's ``device``, with its ``weights``."""
        return cls(weights=weights, device=device, **options)

    @property
    def settings(self) -> dict[str, Any]:
        """The detection threshold (recorded in a table's metadata)."""
        return {"score_threshold": self.score_threshold}

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        import torch  # lazy: heavy; only this backend needs it here

        if frame is None:
            raise ValueError("KeypointRCNNPose needs the frame's pixels")
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255.0)
        with torch.inference_mode():
            out = self.model([x.to(self.device)])[0]
        dets: list[PoseDetection] = []
        for label, score, kps, kscores in zip(
            out["labels"].cpu().numpy(), out["scores"].cpu().numpy(),
            out["keypoints"].cpu().numpy(), out["keypoints_scores"].cpu().numpy(),
        ):
            if int(label) != 1 or float(score) < self.score_threshold:
                continue
            coco = np.concatenate([kps[:, :2], 1.0 / (1.0 + np.exp(-kscores[:, None]))], axis=1)
            det = detection_from_keypoints(coco17_to_openpose(coco), score=float(score))
            if det is not None:
                dets.append(det)
        return dets
