"""Write a clip's sampled frames as PNGs with a labelled 10% grid, for hand-labelling truth files.

Decodes with beenet.media.video.VideoReader (PyAV), so frame indices are the ones beenet uses.
Boxes are read off the grid in ORIGINAL pixel coordinates (the labels show them even when the
image is scaled up for viewing).

    python benchmarks/footage/sample_frames.py CLIP OUTDIR            # sampled frames + cut scan
    python benchmarks/footage/sample_frames.py CLIP OUTDIR --frames 10,11,12
    python benchmarks/footage/sample_frames.py CLIP OUTDIR --frames 40 --crop 300,100,500,400

The sample follows benchmarks/footage/truth format: about one frame per second, at most 20,
always frame 0 and the last frame. The cut scan prints the consecutive-frame pairs whose grey
histograms differ most (a candidate shot cut is then confirmed by looking).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from beenet.media.video import VideoReader

MARGIN = 34


def sample_indices(num_frames: int, fps: float, most: int = 20) -> list[int]:
    """About one index per second of video, at most ``most``, first and last frame included."""
    seconds = num_frames / fps if fps > 0 else num_frames
    k = int(min(most, max(2, round(seconds) + 1)))
    k = min(k, num_frames)
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, k)})


def grid_image(rgb: np.ndarray, scale: float, title: str, origin: tuple[int, int] = (0, 0),
               full: tuple[int, int] | None = None) -> Image.Image:
    """``rgb`` scaled by ``scale`` inside a margin; grid lines every 10% of the FULL frame
    (``full`` = (width, height)), labelled with original pixel coordinates. ``origin`` is the
    top-left of ``rgb`` in the full frame (for crops)."""
    h, w = rgb.shape[:2]
    fw, fh = full if full else (w, h)
    ox, oy = origin
    img = Image.fromarray(rgb).resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    canvas = Image.new("RGB", (img.width + 2 * MARGIN, img.height + 2 * MARGIN + 16), (255, 255, 255))
    canvas.paste(img, (MARGIN, MARGIN + 16))
    draw = ImageDraw.Draw(canvas, "RGBA")
    font = ImageFont.load_default(size=12)
    draw.text((4, 2), title, fill=(0, 0, 0), font=font)
    top = MARGIN + 16
    steps = [i / 20 for i in range(21)]
    for frac in steps:
        major = round(frac * 20) % 2 == 0
        colour = (255, 0, 255, 170) if major else (0, 255, 255, 110)
        x = frac * fw
        if ox <= x <= ox + w:
            px = MARGIN + (x - ox) * scale
            draw.line([(px, top), (px, top + img.height)], fill=colour, width=1)
            if major or scale * fw / 20 > 45:
                draw.text((px - 10, top - 14), f"{x:.0f}", fill=(0, 0, 0), font=font)
                draw.text((px - 10, top + img.height + 2), f"{x:.0f}", fill=(0, 0, 0), font=font)
        y = frac * fh
        if oy <= y <= oy + h:
            py = top + (y - oy) * scale
            draw.line([(MARGIN, py), (MARGIN + img.width, py)], fill=colour, width=1)
            if major or scale * fh / 20 > 30:
                draw.text((1, py - 6), f"{y:.0f}", fill=(0, 0, 0), font=font)
                draw.text((MARGIN + img.width + 2, py - 6), f"{y:.0f}", fill=(0, 0, 0), font=font)
    return canvas


def auto_scale(width: int) -> float:
    return 3.0 if width <= 200 else 2.0 if width <= 400 else 1.0 if width <= 1000 else 1000 / width


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--frames", help="comma-separated frame indices (default: the truth sample)")
    ap.add_argument("--crop", help="x0,y0,x1,y1 in original pixels: write this region enlarged")
    ap.add_argument("--scale", type=float, help="view scale (default: by frame width)")
    ap.add_argument("--cuts", type=int, default=8, help="how many candidate cuts to print")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    with VideoReader(args.clip) as reader:
        n, fps, w, h = reader.num_frames, reader.fps, reader.width, reader.height
        wanted = [int(v) for v in args.frames.split(",")] if args.frames else sample_indices(n, fps)
        print(json.dumps({"clip": args.clip.name, "width": w, "height": h, "fps": round(fps, 3),
                          "frames": n, "sample": wanted}))
        crop = [int(v) for v in args.crop.split(",")] if args.crop else None
        scale = args.scale or (auto_scale(w) if not crop else min(4.0, 900 / (crop[2] - crop[0])))
        diffs = []
        written = set()
        prev = None
        scan = not args.frames
        stop = n if scan else max(wanted) + 1
        for i, rgb in reader.iter_frames(0, stop):
            if scan:
                grey = rgb.mean(axis=2)
                hist = np.histogram(grey, bins=32, range=(0, 256))[0] / grey.size
                if prev is not None:
                    diffs.append((float(np.abs(hist - prev).sum()), i))
                prev = hist
            if i in wanted:
                tag = f"{args.clip.stem}_f{i:05d}"
                if crop:
                    x0, y0, x1, y1 = crop
                    part = np.ascontiguousarray(rgb[y0:y1, x0:x1])
                    im = grid_image(part, scale, f"{tag} crop {crop}", (x0, y0), (w, h))
                    tag += f"_crop{x0}_{y0}"
                else:
                    im = grid_image(rgb, scale, f"{tag}  ({w}x{h}, {fps:.2f} fps, {n} frames)")
                im.save(args.outdir / f"{tag}.png")
                written.add(i)
        missing = sorted(set(wanted) - written)
        if missing:  # e.g. frames before the first keyframe the reader can seek to
            print(f"WARNING: the reader never yielded frames {missing}; not written")
        if scan:
            diffs.sort(reverse=True)
            med = float(np.median([d for d, _ in diffs])) if diffs else 0.0
            print(f"median hist diff {med:.3f}; top: "
                  + ", ".join(f"{i}:{d:.3f}" for d, i in diffs[: args.cuts]))


if __name__ == "__main__":
    main()
