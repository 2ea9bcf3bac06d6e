"""The footage benchmark: its manifest, the scores of benchmarks/people_metrics.py on hand-made
boxes, and benchmarks/bench_people.py run for real on a clip."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.footage import FOOTAGE, footage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from people_metrics import add_up, match_frame, matches, score_clip

MANIFEST = json.loads((ROOT / "benchmarks" / "footage" / "manifest.json").read_text())


def test_the_manifest_names_at_least_12_clips_each_pinned_and_described() -> None:
    clips = MANIFEST["clips"]
    assert len(clips) >= 12
    assert len({c["name"] for c in clips}) == len(clips)
    for c in clips:
        assert c["source"] in ("pypi", "npm", "debian"), c["name"]
        assert re.fullmatch(r"[0-9a-f]{64}", c["sha256"]), c["name"]
        assert c["package"] and c["version"] and c["path"] and c["licence"] and c["content"], c["name"]
        assert set(c["categories"]) <= set(MANIFEST["categories"]), c["name"]
        assert abs(c["frames"] / c["fps"] - c["seconds"]) < 0.02, c["name"]
    assert sum("nobody" in c["categories"] for c in clips) >= 1


def test_the_clips_the_tests_use_are_pinned_alike_in_both_fetch_scripts() -> None:
    script = (ROOT / "scripts" / "fetch-footage.sh").read_text()
    pinned = dict(re.findall(r"\[([\w.]+)\]=([0-9a-f]{64})", script))
    assert set(pinned) == set(FOOTAGE)  # the clips the tests ask for by name
    ours = {c["name"]: c["sha256"] for c in MANIFEST["clips"]}
    assert {n: ours.get(n) for n in pinned} == pinned


def test_a_detection_matches_by_iou_or_by_holding_each_others_centre() -> None:
    person = (100.0, 100.0, 200.0, 400.0)
    assert matches((110.0, 120.0, 210.0, 380.0), person)  # IoU ~0.7
    assert not matches((190.0, 100.0, 290.0, 400.0), person)  # IoU 0.05, centres outside
    # a head-and-shoulders box inside a tall truth box: IoU 0.25, but each holds the other's centre
    assert matches((120.0, 200.0, 180.0, 300.0), (100.0, 150.0, 200.0, 390.0))
    # the truth's centre inside the detection but not the other way round
    assert not matches((0.0, 0.0, 1000.0, 1000.0), (100.0, 100.0, 120.0, 120.0))


def test_matching_is_one_to_one_best_first_and_counts_people_before_tiny_ones() -> None:
    truths = [(0.0, 0.0, 100.0, 200.0), (90.0, 0.0, 190.0, 200.0)]
    dets = [(5.0, 0.0, 105.0, 200.0)]  # matches both truths; the better (first) one wins
    assert match_frame(dets, truths, [False, False]) == {0: 0}
    # the same detection goes to the person who counts, not the tiny one it fits better
    assert match_frame([(0.0, 0.0, 100.0, 200.0)], [(0.0, 0.0, 100.0, 200.0), (0.0, 0.0, 100.0, 180.0)],
                       [True, False]) == {1: 0}


def _truth(frames: dict, cuts=(), identities: bool = True, clip: str = "x.mp4") -> dict:
    return {"clip": clip, "identities": identities, "shot_cuts": list(cuts),
            "frames": {str(f): [{"id": i, "box": b, "tiny": t} for i, b, t in people] for f, people in frames.items()}}


A, B = [0, 0, 100, 300], [400, 0, 500, 300]


def test_ids_per_person_switches_shared_ids_and_false_people() -> None:
    truth = _truth({0: [("A", A, False), ("B", B, False)], 10: [("A", A, False), ("B", B, False)],
                    20: [("A", A, False), ("B", B, False)], 30: [("A", A, False), ("C", [700, 0, 720, 30], True)]})
    dets = {0: [(1, tuple(A)), (2, tuple(B))],
            10: [(1, tuple(A)), (2, tuple(B)), (5, (800.0, 0.0, 900.0, 100.0))],  # a false person
            20: [(2, tuple(A)), (3, tuple(B))],  # both switch; id 2 moves from B to A
            30: [(2, tuple(A))],
            40: [(9, tuple(A))]}  # a frame without truth: not scored
    s = score_clip(truth, dets)
    assert (s.frames, s.people, s.found, s.false, s.tiny, s.tiny_found) == (4, 7, 7, 1, 1, 0)
    assert s.recall == 1.0
    assert s.persons == 2 and s.id_pairs == 4 and s.ids_per_person == 2.0
    assert s.switches == 2 and s.shared_ids == 1
    # best map A->2 (2 boxes: frames 20, 30) or A->1 (frames 0, 10), B->2 (0, 10): 4 of 7 true, 8 found
    assert s.idf1 == pytest.approx(2 * 4 / (7 + 8))


def test_a_change_of_id_across_a_shot_cut_is_not_a_switch() -> None:
    truth = _truth({0: [("A", A, False)], 50: [("A", A, False)]}, cuts=[25])
    s = score_clip(truth, {0: [(1, tuple(A))], 50: [(2, tuple(A))]})
    assert s.switches == 0 and s.ids_per_person == 2.0


def test_frames_not_analysed_are_left_out_and_clips_add_up() -> None:
    truth = _truth({0: [("A", A, False)], 99: [("A", A, False)]}, identities=False)
    s = score_clip(truth, {0: []})  # frame 99 beyond --max-seconds
    assert (s.frames, s.people, s.found, s.recall, s.ids_per_person) == (1, 1, 0, 0.0, None)
    t = score_clip(truth, {0: [(1, tuple(A))], 99: [(1, tuple(A))]})
    total = add_up([s, t])
    assert (total.people, total.found) == (3, 2)


@pytest.mark.slow
def test_the_bench_runs_pass_one_on_a_real_clip_and_writes_its_table(tmp_path: Path) -> None:
    clip = footage("carphone.mp4")
    truth = tmp_path / "truth"
    truth.mkdir()
    # the man in the car, head and shoulders (frames 0 and 30, looked at on a 10% grid)
    (truth / "carphone.json").write_text(json.dumps(_truth({0: [("A", [30, 14, 176, 144], False)],
                                                            30: [("A", [25, 16, 176, 144], False)]},
                                                           clip="carphone.mp4")))
    md = tmp_path / "people.md"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_people.py"), "--clips", "carphone.mp4",
                          "--footage", str(clip.parent), "--truth", str(truth), "--max-seconds", "1.5",
                          "--config", "default=", "--config", "every1=pose_every=1", "--markdown", str(md)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("carphone.mp4")]
    assert [ln.split()[1] for ln in lines] == ["default", "every1"]
    assert all("100% (2/2)" in ln for ln in lines), out.stdout
    table = md.read_text()
    assert table.startswith("| clip | config | recall |") and "| overall | every1 |" in table
