"""Which of the person detector's boxes are tried as new people
(:class:`beenet.inference.pose.newcomers.Newcomers`): weak boxes too, but not where one failed
lately, and never a part of a body (a tie in front of a speaker), on real footage too."""

from __future__ import annotations

import pytest

from beenet.inference.pose.newcomers import FORGET_CALLS, Newcomers, part_of

BODY = (100.0, 50.0, 60.0, 180.0)
TIE = (120.0, 90.0, 14.0, 60.0)  # centre inside BODY, a third of its height
OTHER = (300.0, 60.0, 50.0, 170.0)


def test_strong_and_weak_boxes_are_tried_and_weaker_ones_not():
    new = Newcomers(threshold=0.3, weak=0.2)
    got = new.boxes([(BODY, 0.6), (OTHER, 0.22), ((500.0, 0.0, 40.0, 120.0), 0.15)], people=[])
    assert got == [(BODY, 0.6), (OTHER, 0.22)]


def test_weak_at_or_above_the_threshold_turns_weak_boxes_off():
    new = Newcomers(threshold=0.3, weak=0.5)
    assert new.weak == 0.3
    assert new.boxes([(OTHER, 0.25)], people=[]) == []


def test_a_box_covering_someone_found_is_not_new():
    new = Newcomers(0.3, 0.2)
    assert new.boxes([(BODY, 0.9)], people=[(105.0, 55.0, 50.0, 170.0)]) == []


def test_a_weak_box_that_failed_is_not_tried_there_until_forgotten():
    new = Newcomers(0.3, 0.2)
    moved = (OTHER[0] + 4, OTHER[1], OTHER[2], OTHER[3])  # the same place, a little moved
    first = new.boxes([(OTHER, 0.25)], people=[])
    new.failed(first)
    for k in range(FORGET_CALLS):
        assert new.boxes([(moved, 0.25)], people=[]) == [], k
    assert new.boxes([(moved, 0.25)], people=[]) == [(moved, 0.25)]
    # a strong box is tried whatever failed there
    new.failed([(OTHER, 0.25)])
    assert new.boxes([(moved, 0.35)], people=[]) == [(moved, 0.35)]
    # a new video or shot forgets the places
    new.failed([(OTHER, 0.25)])
    new.clear()
    assert new.boxes([(moved, 0.25)], people=[]) == [(moved, 0.25)]


def test_a_strong_box_that_failed_is_tried_again():
    new = Newcomers(0.3, 0.2)
    new.failed(new.boxes([(OTHER, 0.5)], people=[]))
    assert new.boxes([(OTHER, 0.5)], people=[]) == [(OTHER, 0.5)]


def test_a_part_of_a_body_found_or_tried_is_not_tried():
    assert part_of(TIE, BODY) and not part_of(BODY, TIE) and not part_of(OTHER, BODY)
    new = Newcomers(0.3, 0.2)
    assert new.boxes([(BODY, 0.4), (TIE, 0.32)], people=[]) == [(BODY, 0.4)]
    # a tie scored above its body is tried (the person's box is their body's: test below)
    assert new.boxes([(TIE, 0.32), (BODY, 0.21)], people=[]) == [(TIE, 0.32), (BODY, 0.21)]
    # inside the joints' box of someone found
    assert new.boxes([(TIE, 0.5)], people=[(100.0, 40.0, 60.0, 150.0)]) == []
    # two people side by side, one a bit smaller: both are tried
    near, far = (100.0, 50.0, 60.0, 180.0), (150.0, 80.0, 40.0, 120.0)
    assert new.boxes([(near, 0.6), (far, 0.4)], people=[]) == [(near, 0.6), (far, 0.4)]


@pytest.mark.slow
def test_the_speakers_ties_are_not_people_on_real_footage(blazepose_models):
    """press_statement.mp4 (320x240) frame 0: the detector scores Biden's tie 0.32 and his body
    0.20; both bodies are tried as people, and with ``person_weak=0.2`` both men are people with body
    boxes, none of them a tie (a person takes the box of the call's, at person_weak or more,
    that fits their joints best)."""
    from beenet.inference.pose.backends import make_pose_backend
    from beenet.inference.pose.detector import PersonDetector
    from beenet.inference.pose.models import find_detector_files
    from footage import footage_frame

    frame = footage_frame("press_statement.mp4", 0)
    boxes = PersonDetector(find_detector_files(), size=384, threshold=0.1)(frame)
    ties = [(b, s) for b, s in boxes if any(part_of(b, o) for o, t in boxes if t >= 0.2)]
    assert any(s >= 0.3 for _, s in ties)  # a tie scored as a strong box
    tried = Newcomers(0.3, 0.2).boxes(boxes, people=[])
    assert sum(b[3] > 0.6 * frame.shape[0] for b, _ in tried) >= 2  # two bodies, one weak
    pose = make_pose_backend("mediapipe", person_weak=0.2)  # weak boxes on (off by default)
    pose.reset()
    people = [pose(frame, i) for i in range(4)][-1]
    pose.close()
    assert people and all(p.box[3] > 0.4 * frame.shape[0] for p in people)
