"""BEE-NET and its extensions: one trunk, context and emotion streams, probabilistic late fusion.

``BEENet(cfg).forward(batch)`` reads the sample dict of ``docs/design.md`` (``frames`` ``[B, T, 3, S, S]``,
``frame_mask`` ``[B, T]``, and ``crops`` / ``skeleton`` / ``context`` when the config uses them) and
returns the dict that the losses, metrics and predictor read. The forward pass has no Python branch
on tensor values and no data-dependent shape, so it exports to ONNX with a dynamic batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from beenet.errors import BeenetError, ConfigError
from beenet.media.transforms import normalize_uint8
from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_CATEGORIES, NUM_COCO, NUM_PLACES, NUM_VAD, VAD_SCALE
from beenet.models.config import ModelConfig, fusion_class
from beenet.models.fusion import FusionOptions, build_fusion
from beenet.models.heads import ContextStream, StreamFeatures
from beenet.models.pooling import make_pool
from beenet.models.priors import build_priors
from beenet.models.stgcn import STGCN
from beenet.models.trunk import build_trunk

log = logging.getLogger(__name__)

#: The output key of each context part's stream logits.
CONTEXT_LOGITS = {"places": "place_logits", "objects": "object_logits"}


@torch.no_grad()
def _zero_vad_outputs(fusion: nn.Module) -> None:
    """``model.vad_head_init=zero``: the VAD rows of the fusion's linear layer start at 0, so the
    emotion stream's standardised VAD is 0 (the fitted training mean) before any step."""
    classifier = getattr(fusion, "classifier", None)
    if isinstance(classifier, nn.Linear) and classifier.out_features == NUM_CATEGORIES + NUM_VAD:
        classifier.weight[NUM_CATEGORIES:].zero_()
        classifier.bias[NUM_CATEGORIES:].zero_()


class BEENet(nn.Module):
    """The BEE-NET model family, built from one :class:`ModelConfig`.

    Outputs of :meth:`forward` (B = batch):

    - ``categories`` ``[B, 26]``: fused category scores (monotone; rank them for AP / AUC).
    - ``category_logits`` ``[B, 26]``: logits of the fused categories (odds form; BCE input).
    - ``vad`` ``[B, 3]``: valence, arousal, dominance on the raw BoLD scale.
    - ``vad_z`` ``[B, 3]``: the same in units of the training std around the training mean.
    - ``vad_std`` ``[3]``: the training std of VAD (the priors' ``vad_std``).
    - ``fused`` ``[B, 29]``: categories then VAD / 10 (what the MSE sees with ``loss.vad_scale: tenth``,
      the older reading; with ``raw``, the authors', it reads the categories and ``vad``).
    - ``streams``: ``{name: [B, 29]}`` each emotion-bearing stream (``emotion`` = whole frame,
      ``crop``, ``skeleton``) alone through the same fusion, in the layout of ``fused``.
    - ``place_logits`` ``[B, 365]`` / ``object_logits`` ``[B, 80]`` and ``place_embedding`` /
      ``object_embedding`` ``[B, kappa]`` when those streams exist.
    - ``context_probs`` ``[B, J]``: the context probabilities c_j the fusion used (when it uses any).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        D = cfg.stream_channels
        self.trunk = build_trunk(cfg.backbone, cfg.pretrained)
        C = self.trunk.out_channels

        def stream_features() -> StreamFeatures:
            return StreamFeatures(C, D, cfg.stream_layers, cfg.temporal_pool)

        self.emotion_stream = stream_features()
        self.crop_trunk = build_trunk(cfg.backbone, cfg.pretrained) if cfg.body_crop == "separate" else None
        self.crop_stream = stream_features() if cfg.body_crop != "none" else None
        if cfg.skeleton:
            self.skeleton_stream = STGCN(in_channels=3, channels=tuple(cfg.skeleton_channels), pool=cfg.skeleton_pool)
            self.skeleton_projector = nn.Sequential(nn.Linear(self.skeleton_stream.out_dim, D), nn.ReLU(inplace=True))
        else:
            self.skeleton_stream = None
            self.skeleton_projector = None
        self.stream_names = cfg.emotion_streams
        self.feature_dropout = nn.Dropout(cfg.dropout)
        self.stream_pool = (
            make_pool(cfg.stream_pool, D) if len(self.stream_names) > 1 else None
        )

        own_context = cfg.fusion_context == "streams"

        def context_stream(num_classes: int) -> ContextStream:
            return ContextStream(C, num_classes, D, cfg.stream_layers, cfg.kappa, cfg.dropout, cfg.temporal_pool,
                                 projector=cfg.kappa_projector)

        self.place_stream = context_stream(NUM_PLACES) if own_context and cfg.place_stream else None
        self.object_stream = context_stream(NUM_COCO) if own_context and cfg.object_stream else None

        self.context_parts = cfg.context_parts
        part_widths = tuple(CONTEXT_SLICES[p].stop - CONTEXT_SLICES[p].start for p in self.context_parts)
        num_contexts = sum(part_widths)
        #: The priors are over one context per part (``camode-scaffold``) or per class.
        self.priors_per_part = fusion_class(cfg.fusion).priors_per_part
        num_prior_contexts = len(part_widths) if self.priors_per_part else num_contexts
        self.priors = build_priors(cfg.fusion, num_prior_contexts, trainable=cfg.trainable_priors,
                                   pseudocount=cfg.prior_pseudocount)
        self.fusion = build_fusion(cfg.fusion, D, num_contexts, FusionOptions.from_config(cfg, part_widths))
        if cfg.vad_head_init == "zero":
            _zero_vad_outputs(self.fusion)
        if cfg.channels_last:
            self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ forward

    def _frames(self, x: torch.Tensor, key: str, mask: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != 3:
            raise BeenetError(f"batch[{key!r}] must have shape [B, T, 3, S, S], got {tuple(x.shape)}")
        if x.dtype == torch.uint8:  # as the dataset ships them: normalised here, on the device
            x = normalize_uint8(x, mask)
        x = x.flatten(0, 1)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _context(self, batch: Mapping[str, Any], out: dict[str, Any]) -> torch.Tensor | None:
        """c ``[B, J]`` for the fusion: softmax of the own streams, or ``batch["context"]`` parts."""
        if not self.fusion.uses_context:
            return None
        if self.cfg.fusion_context == "streams":
            parts = [torch.softmax(out[CONTEXT_LOGITS[p]], dim=-1) for p in self.context_parts]
        else:
            if "context" not in batch:
                raise BeenetError(
                    "this model reads its context from batch['context'] (model.fusion_context=input) but the "
                    "batch has none; give the dataset a context source, or use model.fusion_context=streams"
                )
            ctx = batch["context"]
            if ctx.ndim != 2 or ctx.shape[1] != CONTEXT_DIM:
                raise BeenetError(
                    f"batch['context'] must have shape [B, {CONTEXT_DIM}] (365 places then 80 objects), "
                    f"got {tuple(ctx.shape)}"
                )
            parts = [ctx[:, CONTEXT_SLICES[p]] for p in self.context_parts]
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def _scores(self, result: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(categories, raw VAD, fused [B, 29]) from a fusion result."""
        vad = self.priors.vad_mean + self.priors.vad_std * result["vad_z"]
        fused = torch.cat([result["categories"], vad / VAD_SCALE], dim=1)
        return result["categories"], vad, fused

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        frames = batch["frames"]
        B, T = frames.shape[0], frames.shape[1]
        mask = batch.get("frame_mask")
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=frames.device)
        fmap = self.trunk(self._frames(frames, "frames", mask))

        features = [self.emotion_stream(fmap, mask)]
        if self.crop_stream is not None:
            if "crops" not in batch:
                raise BeenetError(f"model.body_crop={self.cfg.body_crop!r} needs batch['crops'] (set data.body_crop=true)")
            crop_trunk = self.crop_trunk if self.crop_trunk is not None else self.trunk
            features.append(self.crop_stream(crop_trunk(self._frames(batch["crops"], "crops", mask)), mask))
        if self.skeleton_stream is not None:
            if "skeleton" not in batch:
                raise BeenetError("model.skeleton=true needs batch['skeleton'] and batch['skeleton_mask'] (set data.skeleton=true)")
            skel = self.skeleton_stream(batch["skeleton"], batch.get("skeleton_mask"))
            features.append(self.skeleton_projector(skel))
        features = [self.feature_dropout(f) for f in features]

        out: dict[str, Any] = {}
        if self.place_stream is not None:
            out["place_logits"], out["place_embedding"] = self.place_stream(fmap, mask)
        if self.object_stream is not None:
            out["object_logits"], out["object_embedding"] = self.object_stream(fmap, mask)
        context = self._context(batch, out)
        if context is not None:
            out["context_probs"] = context

        if self.stream_pool is None:
            pooled = features[0]
        else:
            stacked = torch.stack(features, dim=1)  # [B, S, D]
            if self.cfg.stream_pool == "attention" and self.crop_stream is not None:
                pooled = self.stream_pool(stacked, None, query=features[1])
            else:
                pooled = self.stream_pool(stacked, None)

        result = self.fusion(pooled, context, self.priors)
        out["categories"], out["vad"], out["fused"] = self._scores(result)
        out["category_logits"] = result["category_logits"]
        out["vad_z"] = result["vad_z"]
        out["vad_std"] = self.priors.vad_std

        streams: dict[str, torch.Tensor] = {}
        for name, feat in zip(self.stream_names, features):
            streams[name] = out["fused"] if self.stream_pool is None else self._scores(self.fusion(feat, context, self.priors))[2]
        out["streams"] = streams
        return out

    # ------------------------------------------------------------------ priors and sizes

    @torch.no_grad()
    def fit_priors(
        self,
        context: torch.Tensor | np.ndarray | None,
        categories: torch.Tensor | np.ndarray,
        vad: torch.Tensor | np.ndarray,
    ) -> None:
        """Fit the priors on the training split: ``context`` ``[N, 445]`` (365 places then 80 objects;
        ``None`` when the model fuses no context), soft ``categories`` ``[N, 26]``, raw ``vad`` ``[N, 3]``.

        The model keeps the context parts its streams use (places ``[:365]``, objects ``[365:]``).
        """
        if self.priors.num_contexts == 0:
            self.priors.fit(None, categories, vad)
            return
        if context is None:
            raise BeenetError(
                f"fit_priors: this model uses the {' and '.join(self.context_parts)} context but no context "
                "labels were given; give the training set a context source"
            )
        ctx = torch.as_tensor(np.asarray(context) if not isinstance(context, torch.Tensor) else context)
        if ctx.ndim != 2 or ctx.shape[1] != CONTEXT_DIM:
            raise BeenetError(
                f"fit_priors: context must have shape [N, {CONTEXT_DIM}] (365 places then 80 objects), "
                f"got {tuple(ctx.shape)}"
            )
        parts = [ctx[:, CONTEXT_SLICES[p]] for p in self.context_parts]
        if self.priors_per_part:  # one context per part, its confidence = the part's max probability
            parts = [p.amax(dim=1, keepdim=True) for p in parts]
        self.priors.fit(torch.cat(parts, dim=1), categories, vad)

    def no_weight_decay(self) -> set[str]:
        """Full names of parameters that weight decay must not touch (timm's convention): the
        priors when ``trainable_priors`` makes them parameters (decay would pull them toward 0)."""
        return {f"priors.{name}" for name, _ in self.priors.named_parameters()}

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_model(cfg: ModelConfig | Mapping[str, Any], seed: int | None = None) -> BEENet:
    """A :class:`BEENet` from a config (or its dict). ``seed`` makes the random init repeatable
    without touching the global RNG of the caller (the init runs inside ``torch.random.fork_rng``).
    """
    if not isinstance(cfg, ModelConfig):
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"build_model needs a ModelConfig or a dict, got {type(cfg).__name__}")
        cfg = ModelConfig.from_dict(cfg)
    if seed is None:
        return BEENet(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BEENet(cfg)


__all__ = ["BEENet", "build_model"]
