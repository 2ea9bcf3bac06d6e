"""Each person's box in the CNN detector's path (``detector="centernet"``): the extent of the
body seen, not of the joints found. On a call that runs the detector a person takes the detector's
box that is theirs (:func:`with_box`); on a call it skips, the box of the last call that ran it,
moved as their joints moved (:func:`moved_body`), unless their joints jumped onto a neighbour
(:func:`moved_apart`)."""

from __future__ import annotations

from dataclasses import replace

from beenet.inference.pose.boxes import Box, box_iou, centre, inside
from beenet.inference.pose.keypoints import PoseDetection
from beenet.inference.pose.newcomers import covers


def with_box(person: PoseDetection, boxes: list[tuple[Box, float]], strong: float = 0.0) -> PoseDetection:
    """The person with the detector's box that is theirs (the best IoU among those that cover
    them; among the boxes scored ``strong`` or more when one of those covers them), when one is:
    the extent of the body seen, not of the joints found (a head-and-shoulders close-up's joints
    are a strip at eye level)."""
    mine = [b for b, s in boxes if s >= strong and covers(b, person.box)] or \
        [b for b, _ in boxes if covers(b, person.box)]
    if not mine:
        return person
    return replace(person, box=max(mine, key=lambda b: box_iou(b, person.box)), body=True)


def moved_body(person: PoseDetection, body: tuple[Box, tuple[float, float]] | None,
               shape: tuple[int, ...]) -> PoseDetection:
    """On a call the detector skips (``person_every``), a followed person's box: the detector's
    box of the last call that ran it, moved as the centre of their joints' box moved since (a
    head-and-shoulders close-up keeps a body box, not a strip at eye level); their joints' box
    when the detector never boxed them."""
    if body is None:
        return person
    (x, y, w, h), (cx, cy) = body
    nx, ny = centre(person.box)
    x0, y0 = max(0.0, x + nx - cx), max(0.0, y + ny - cy)
    x1, y1 = min(float(shape[1]), x + w + nx - cx), min(float(shape[0]), y + h + ny - cy)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return person
    return replace(person, box=(x0, y0, x1 - x0, y1 - y0), body=True)


def moved_apart(found: list[tuple], bodies: dict[int, tuple[Box, tuple[float, float]] | None]) -> list[tuple]:
    """The people of a call the detector skips (``found``: ``(person, ..., origin)``, each person
    with the box :func:`moved_body` gave; ``bodies``: ``id(origin) ->`` the body box and joints'
    centre of the last call that ran the detector), except that one whose box's centre left their
    own body box and lies in another person's box keeps the body box, unmoved: their landmarks
    jumped onto a neighbour. press_statement.mp4: a man whose hips a banner hides is posed, on
    some calls, between him and the speaker beside him (his nose 70 px off his body, inside the
    speaker's box); moved there, his box dragged his track onto the speaker's, and their ids
    swapped. Someone who really walks out of their box between two detector calls while in
    another's is held back for that call only: the next call's detector box is theirs again."""
    out = []
    for i, (p, *rest) in enumerate(found):
        body = bodies.get(id(rest[-1]))
        c = centre(p.box)
        if body is not None and not inside(*c, body[0]) and any(
                inside(*c, q.box) for j, (q, *_) in enumerate(found) if j != i):
            p = replace(p, box=body[0], body=True)
        out.append((p, *rest))
    return out
