"""How a BoLD instance becomes a sample: :class:`DataConfig` (frames, sizes, crops, skeleton,
stills) and :func:`spread` (frames spread evenly over a span), shared by the dataset and by
predict's windows. Read without torch: predicting with an exported model does not load it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from beenet.choices import check_at_least, check_choices, check_positive_ints
from beenet.models.config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class DataConfig:
    """How an instance becomes tensors (see ``docs/design.md``)."""

    sampling: Literal["still", "uniform"] = "still"  # "still": one frame; "uniform": num_frames evenly spaced frames
    num_frames: int = 8  # T for uniform sampling (stills use 1)
    #: Whole frames are resized to image_size x image_size. In a run this follows model.image_size, the
    #: one owner (the frames the model reads); set on its own only where a dataset stands alone.
    image_size: int = ModelConfig.image_size
    body_crop: bool = False  # add person-centred crops
    crop_size: int = 112
    skeleton: bool = False  # add the normalised OpenPose skeleton
    skeleton_frames: int = 32
    box_margin: float = 0.15  # crop box margin, a fraction of the keypoint box per side
    #: Training samples drawn from each instance per epoch, each with its own random frame(s)
    #: (``docs/method.md`` 2.1): 1 = one still per instance per epoch (every preset); the
    #: authors trained on extracted stills, several per clip, which k > 1 approximates (an epoch
    #: then has k x the steps). Evaluation always takes one sample per instance (the middle still).
    stills_per_instance: int = 1
    #: Stills scored per instance at evaluation (``sampling: still``): 1 = the middle still, one
    #: test item per instance (every preset); k > 1 = frame-level scoring, k evenly spaced stills
    #: each scored as its own test item with the instance's labels (the authors' test set is made
    #: of stills). Evaluation returns k rows per instance: :func:`frame_level` repeats the targets.
    eval_stills: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~beenet.errors.ConfigError` naming the field whose value is not valid."""
        check_choices(self, "data")
        check_positive_ints(self, "data", "num_frames", "image_size", "crop_size", "skeleton_frames",
                            "stills_per_instance", "eval_stills")
        check_at_least(self, "data", 0, "box_margin")

    @property
    def frames_per_sample(self) -> int:
        return 1 if self.sampling == "still" else self.num_frames


def spread(candidates: np.ndarray, count: int, generator: torch.Generator | None) -> np.ndarray:
    """``count`` increasing elements of ``candidates`` spread evenly: the middle of each of
    ``count`` equal segments, or a random element of each segment when a generator is given.
    Returns every candidate when there are fewer than ``count``.
    """
    n = len(candidates)
    if n <= count:
        return np.asarray(candidates)
    edges = np.linspace(0.0, n, count + 1)
    if generator is None:
        pos = np.floor(edges[:-1] + np.diff(edges) / 2.0).astype(np.int64)
    else:
        # Integer segments (each at least one wide, as n > count) so draws never collide.
        cuts = np.round(edges).astype(np.int64)
        import torch  # lazy: a generator given is torch's, so torch is loaded already

        u = torch.rand(count, generator=generator, dtype=torch.float64).numpy()
        pos = cuts[:-1] + np.floor(u * np.diff(cuts)).astype(np.int64)
    pos = np.clip(pos, 0, n - 1)
    return np.asarray(candidates)[pos]
