"""Contact sheets of ``bench_people.py --sheets DIR``: each sampled frame of a clip with the truth
(green, the person's letter; yellow when tiny) and the tracked people's boxes (blue with the track
id when they match someone, red when they match nobody), to judge the scores by eye."""

from __future__ import annotations

from pathlib import Path

from people_metrics import match_frame

TILE_H = 270


def write_sheet(video: Path, truth: dict, boxes: dict[str, list], out: Path, columns: int = 5) -> Path:
    """One PNG of the sampled frames of ``truth`` that ``boxes`` (frame -> [[track id, box]]) covers."""
    from PIL import Image, ImageDraw  # lazy: only --sheets draws

    from beenet.media.video import VideoReader  # lazy: as above

    keys = sorted((k for k in truth["frames"] if k in boxes), key=int)
    if not keys:
        raise ValueError(f"{video.name}: no sampled frame was analysed")
    wanted = {int(k) for k in keys}
    with VideoReader(video) as reader:  # in order, as pass 1 reads (random access fails on some MPEG-2 files)
        got = {i: f for i, f in reader.iter_frames(0, max(wanted) + 1) if i in wanted}
    keys = [k for k in keys if int(k) in got]
    frames = [got[int(k)] for k in keys]
    h, w = frames[0].shape[:2]
    scale = TILE_H / h
    tile_w = max(1, round(w * scale))
    rows = (len(keys) + columns - 1) // columns
    sheet = Image.new("RGB", (tile_w * min(columns, len(keys)), TILE_H * rows), "black")
    for n, (key, frame) in enumerate(zip(keys, frames)):
        im = Image.fromarray(frame).resize((tile_w, TILE_H))
        draw = ImageDraw.Draw(im)
        people = truth["frames"][key]
        truths = [tuple(map(float, p["box"])) for p in people]
        tiny = [bool(p.get("tiny", False)) for p in people]
        dets = [(int(pid), tuple(map(float, box))) for pid, box in boxes[key]]
        hit = set(match_frame([b for _, b in dets], truths, tiny).values())  # type: ignore[arg-type]
        for p, box, small in zip(people, truths, tiny):
            _box(draw, box, scale, "yellow" if small else "lime", str(p.get("id", "")), top=True)
        for j, (pid, box) in enumerate(dets):
            _box(draw, box, scale, "deepskyblue" if j in hit else "red", str(pid), top=False)
        draw.text((3, 3), f"frame {key}", fill="white")
        sheet.paste(im, ((n % columns) * tile_w, (n // columns) * TILE_H))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def _box(draw, box: tuple, scale: float, colour: str, label: str, top: bool) -> None:
    x0, y0, x1, y1 = (v * scale for v in box)
    draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
    draw.text((x0 + 3, y0 + 3) if top else (x0 + 3, max(y0, y1 - 13)), label, fill=colour)
