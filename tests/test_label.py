"""``beenet label``: the labelling page in headless Chromium on real footage, its server's checks,
and the labels file it writes read back by ``beenet import``.

The footage is a short cut of ``vtest.avi`` (pedestrians on a plaza): frames 0-5, the part of the
frame where pass 1 tracks two people, so pass 1 costs seconds, not minutes. The browser test
drives Debian's ``chromium`` through Playwright, as ``tests/test_view.py`` does (skipped with the
reason when either is missing).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from footage import footage

from beenet.cli import main
from beenet.importing.labels_file import FULL_HEADER, read_labels
from beenet.labels import CATEGORIES

REPO = Path(__file__).resolve().parents[1]


def cut_plaza(dest: Path) -> Path:
    """Frames 0-5 of vtest.avi, the box x 220-540, y 140-360 (two people walking), as H.264."""
    from beenet.media.video import VideoReader
    from beenet.media.video_writer import VideoWriter

    with VideoReader(footage("vtest.avi")) as reader, VideoWriter(dest, reader.fps or 10.0, 320, 220) as writer:
        for _, frame in reader.iter_frames(0, 6):
            writer.write(np.ascontiguousarray(frame[140:360, 220:540]))
    return dest


def page_data(page: Path) -> dict:
    m = re.search(r"<script>window.BEENET=(.*?);</script>", page.read_text(encoding="utf-8"), re.S)
    assert m, f"no embedded data in {page}"
    return json.loads(m.group(1))


# ---- the labels store and its server, in Python --------------------------------------------------
def _row(video="plaza.mp4", pid=0, start=1, end=3, annotator="ana", on=(), vad=(5, 5, 5)) -> dict:
    return {"video": video, "person_id": pid, "start": start, "end": end, "annotator": annotator,
            "categories": [1 if k in on else 0 for k in range(26)], "vad": list(vad)}


def _post(base: str, route: str, body, headers=None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + route, data=data, method="POST",
                                 headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture()
def server(tmp_path):
    """The rows' server over a labels file that already holds lines of its own (a header, a plain
    row, a row of another video), the videos' people as pass 1 gave them."""
    from beenet.labelling.server import make_label_server
    from beenet.labelling.store import LabelStore, VideoPeople

    labels = tmp_path / "labels.csv"
    own = [FULL_HEADER, ["other.mp4", *["0"] * 25, "1", "3", "4", "5"],
           ["other.mp4", "2", "0", "9", "zoe", *["0"] * 26, "6", "6", "6"]]
    with open(labels, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(own)
    videos = {"plaza.mp4": VideoPeople("plaza.mp4", 6, {0: np.arange(6), 1: np.arange(2, 6)})}
    srv = make_label_server(tmp_path, LabelStore(labels, videos), 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/", labels
    finally:
        srv.shutdown()
        srv.server_close()


BAD_ROWS = [
    (_row(vad=(11, 5, 5)), "valence must be in [1, 10] (BoLD's scale): '11'"),
    (_row(vad=(5, 0, 5)), "arousal must be in [1, 10] (BoLD's scale): '0'"),
    (_row(pid=7), "person 7 is not among the people the tracker found in plaza.mp4 (person ids: 0, 1)"),
    (_row(video="nowhere.mp4"), "video 'nowhere.mp4' is not on this page (videos: plaza.mp4)"),
    (_row(start=2, end=50), "the span 2-50 is outside plaza.mp4, which has 6 frames (0-5)"),
    (_row(start=3, end=1), "end_frame 1 is before start_frame 3"),
    (_row(start=-1), "start_frame must be a frame number (an integer >= 0): '-1'"),
    (_row(pid=1, start=0, end=1), "person 1 is not tracked anywhere in frames 0-1 of plaza.mp4 (tracked in 2-5)"),
    (_row(annotator="  "), "the annotator is empty: type a name in the Annotator field"),
    ({**_row(), "categories": [0.5] + [0] * 25}, "category Peace must be 0 or 1 (ticked or not): 0.5"),
    ({**_row(), "vad": [5, 5]}, "'vad' must be a list of 3 numbers: valence, arousal, dominance (1 to 10)"),
]


def test_the_server_refuses_bad_rows_with_the_reason_and_leaves_the_file(server) -> None:
    base, labels = server
    before = labels.read_bytes()
    for row, message in BAD_ROWS:
        status, body = _post(base, "api/save", {"row": row, "replaces": None})
        assert (status, body) == (400, {"error": message}), row
    assert _post(base, "api/save", b"{not json")[0] == 400
    assert "the request body is not JSON" in _post(base, "api/save", b"{not json")[1]["error"]
    status, body = _post(base, "api/save", {"row": _row()}, headers={"Content-Type": "text/plain"})
    assert (status, body["error"]) == (400, "send the row as JSON (Content-Type: application/json)")
    status, body = _post(base, "api/save", {"row": _row()},
                         headers={"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert status == 403 and "another site" in body["error"]
    assert labels.read_bytes() == before


def test_the_server_saves_changes_and_deletes_keeping_the_files_own_lines(server) -> None:
    base, labels = server
    before = labels.read_text().splitlines()
    status, body = _post(base, "api/save", {"row": _row(on=(0,), vad=(7, 5, 5)), "replaces": None})
    assert status == 200 and len(body["rows"]) == 1  # rows of the page's videos only
    # The page edits the span it saved: the row is replaced where it stands, not added again.
    key = {k: _row()[k] for k in ("video", "person_id", "start", "end", "annotator")}
    status, body = _post(base, "api/save", {"row": _row(end=4, on=(0, 6), vad=(7, 5, 5)), "replaces": key})
    assert status == 200 and [(r["start"], r["end"]) for r in body["rows"]] == [(1, 4)]
    _post(base, "api/save", {"row": _row(end=4, annotator="ben", vad=(3, 3, 3))})  # a second annotator
    # A new span typed over a saved one does not wipe its labels.
    status, body = _post(base, "api/save", {"row": _row(end=4), "replaces": None})
    assert (status, body["error"]) == (400, "ana already has a row for person 0, frames 1-4 of plaza.mp4: open that "
                                            "one (s, or click it under Saved spans) to change it")
    cats = ["1" if k in (0, 6) else "0" for k in range(26)]
    assert labels.read_text().splitlines() == before + [
        ",".join(["plaza.mp4", "0", "1", "4", "ana", *cats, "7", "5", "5"]),
        ",".join(["plaza.mp4", "0", "1", "4", "ben", *["0"] * 26, "3", "3", "3"])]
    with urllib.request.urlopen(base + "api/rows") as r:
        assert [x["annotator"] for x in json.loads(r.read())["rows"]] == ["ana", "ben"]
    status, body = _post(base, "api/delete", {"key": {**key, "end": 4, "annotator": "ben"}})
    assert status == 200 and [x["annotator"] for x in body["rows"]] == ["ana"]
    rows, problems = read_labels(labels)  # what import reads: every line, the file's own kept
    assert not problems and len(rows) == 3
    # A line broken by hand while the page is open: the server says where, and writes nothing.
    with open(labels, "a") as fh:
        fh.write("plaza.mp4,0,1\n")
    broken = labels.read_bytes()
    status, body = _post(base, "api/save", {"row": _row(start=2, end=4, annotator="cy")})
    assert status == 409 and body["error"].startswith(f"{labels}, line 5: expected 34 columns")
    assert labels.read_bytes() == broken


def test_a_malformed_labels_file_is_refused_naming_its_line_and_kept(tmp_path, capsys) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(",".join(FULL_HEADER) + "\n" + ",".join(["a.mp4", "0", "1", "4", "ana", *["0"] * 26, "5", "5", "5"])
                      + "\n" + ",".join(["a.mp4", "0", "1", "4", "bob", *["0"] * 26, "12", "5", "5"]) + "\n")
    before = labels.read_bytes()
    assert main(["label", str(tmp_path), "--out", str(labels)]) == 1
    err = capsys.readouterr().err
    assert f"{labels}, line 3: valence must be in [1, 10] (BoLD's scale): '12'" in err
    assert labels.read_bytes() == before


# ---- the page in a browser ---------------------------------------------------------------------
def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (the 'test' extra)")
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("no chromium on PATH: apt-get install -y chromium")
    return sync_playwright, exe


@pytest.fixture(scope="module")
def served(tmp_path_factory, blazepose_models):
    """``beenet label --serve`` on the cut as a user runs it, in its own process: pass 1 runs there
    (cached for the session, so the import after it does not pose again), the page is written and
    served. Yields the folder, the cut, the labels file, the page's data and the server's address."""
    tmp = tmp_path_factory.mktemp("label")
    clip = cut_plaza(tmp / "plaza.mp4")
    labels = tmp / "labels.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "beenet", "label", str(clip), "--out", str(labels), "--page",
                             str(tmp / "page"), "--serve", "--port", "0", "--no-open", "--annotator", "ana"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)index\.html", line)
        if m:
            break
    else:
        proc.wait()
        pytest.fail("beenet label --serve did not start:\n" + "".join(lines))
    assert "plaza.mp4: 2 people tracked in 6 frames" in "".join(lines), "".join(lines)
    assert not labels.exists()  # nothing labelled yet, nothing written
    yield tmp, clip, labels, page_data(tmp / "page" / "index.html"), m.group(1)
    proc.terminate()
    proc.wait(timeout=30)


def _seek(pg, frame: int) -> None:
    pg.evaluate(f"window.__labelSeekFrame({frame})")
    pg.wait_for_function(f"document.getElementById('overlay').dataset.frame == '{frame}' && "
                         "document.querySelector('video').readyState >= 2 && !document.querySelector('video').seeking")


def _click_person(pg, video: dict, pid: int, frame: int) -> None:
    person = next(p for p in video["people"] if p["id"] == pid)
    i = person["f"].index(frame)
    x0, y0, x1, y1 = person["b"][4 * i:4 * i + 4]
    box = pg.locator("#overlay").bounding_box()
    pg.locator("#overlay").click(position={"x": (x0 + x1) / 2 * box["width"] / video["width"],
                                           "y": (y0 + 0.6 * (y1 - y0)) * box["height"] / video["height"]})


def _saved(pg) -> None:
    pg.wait_for_function("document.body.dataset.pending === '0' && "
                         "document.getElementById('status').dataset.state === 'saved'")


def _slider(pg, name: str, value: int) -> None:
    s = pg.locator(f"#vad-{name}")
    s.focus()
    for _ in range(abs(value - 5)):
        pg.keyboard.press("ArrowRight" if value > 5 else "ArrowLeft")


@pytest.mark.slow
def test_label_two_people_in_the_browser_reload_then_import(served, tmp_path) -> None:
    tmp, clip, labels, data, base = served
    video = data["videos"][0]
    ids = [p["id"] for p in video["people"]]
    assert video["name"] == "plaza.mp4" and len(ids) == 2, f"pass 1 should track two people in the cut: {ids}"
    a, b = ids
    sync_playwright, exe = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(base + "index.html")
        pg.wait_for_function("document.getElementById('status').dataset.state === 'loaded'")
        assert pg.locator("#annotator").input_value() == "ana"  # --annotator
        assert "n / p" in pg.locator("#keys").inner_text()  # the shortcuts are on the page
        # Person a, frames 1-3: Peace and Happiness ticked, valence 8.
        _seek(pg, 1)
        _click_person(pg, video, a, 1)
        assert pg.locator("#person").input_value() == str(a)
        pg.keyboard.press("[")
        _seek(pg, 3)
        pg.keyboard.press("]")
        _saved(pg)  # complete: saved at once
        pg.locator('#form .cat input[data-k="0"]').check()
        pg.locator('#form .cat input[data-k="6"]').check()
        _slider(pg, "valence", 8)
        pg.locator("#overlay").click(position={"x": 1, "y": 1})  # focus off the slider (no box there)
        pg.keyboard.press("Enter")
        _saved(pg)
        # The other person (n), frames 3-5: Sympathy ticked, arousal 3.
        pg.keyboard.press("n")
        assert pg.locator("#person").input_value() == str(b)
        pg.keyboard.press("[")
        _seek(pg, 5)
        pg.keyboard.press("]")
        _saved(pg)
        pg.locator('#form .cat input[data-k="10"]').check()
        _slider(pg, "arousal", 3)
        pg.locator("#overlay").click(position={"x": 1, "y": 1})
        pg.keyboard.press("Enter")
        _saved(pg)
        # A second annotator on the first span: s opens it, a new name makes it a new row.
        pg.keyboard.press("s")
        assert pg.locator("#formTitle").inner_text() == f"Row of ana: person {a}, frames 1-3"
        pg.locator("#annotator").fill("ben")
        pg.locator("#annotator").press("Tab")
        pg.locator('#form .cat input[data-k="1"]').check()
        _saved(pg)
        pg.reload()
        pg.wait_for_function("document.getElementById('status').dataset.state === 'loaded'")
        shown = [r.inner_text().split("\t") for r in pg.locator("#spans tbody tr").all()]
        # A refused change shows the server's reason; the file keeps the row as it was.
        pg.keyboard.press("s")
        pg.locator("#end").fill("99")
        pg.locator("#end").press("Tab")
        pg.wait_for_function("document.getElementById('status').dataset.state === 'error'")
        assert pg.locator("#status").inner_text() == \
            "not saved: the span 1-99 is outside plaza.mp4, which has 6 frames (0-5)"
        browser.close()
    assert not errors, errors
    assert shown == [[f"id {a}", "1-3", "ana", f"{CATEGORIES[0]}, {CATEGORIES[6]}", "8 / 5 / 5"],
                     [f"id {a}", "1-3", "ben", f"{CATEGORIES[0]}, {CATEGORIES[1]}, {CATEGORIES[6]}", "8 / 5 / 5"],
                     [f"id {b}", "3-5", "ana", CATEGORIES[10], "5 / 3 / 5"]]

    def cats(*on):
        return ",".join("1" if k in on else "0" for k in range(26))

    assert labels.read_text() == (",".join(FULL_HEADER) + "\n"
                                  f"plaza.mp4,{a},1,3,ana,{cats(0, 6)},8,5,5\n"
                                  f"plaza.mp4,{b},3,5,ana,{cats(10)},5,3,5\n"
                                  f"plaza.mp4,{a},1,3,ben,{cats(0, 1, 6)},8,5,5\n")
    # beenet import reads it: both people resolve (pass 1 from the cache), two annotators averaged.
    out = tmp_path / "ds"
    assert main(["import", str(clip), "--labels", str(labels), "--out", str(out)]) == 0
    manifest = json.loads((out / "beenet-import.json").read_text())
    assert manifest["problems"] == []
    assert sorted((i["person_id"], tuple(i["span"]), tuple(i["annotators"])) for i in manifest["instances"]) == \
        sorted([(a, (1, 3), ("ana", "ben")), (b, (3, 5), ("ana",))])
    train = list(csv.reader(open(out / "annotations" / "train.csv")))
    first = next(r for r in train if int(r[1]) == a)
    assert [float(x) for x in first[4:7]] == [1.0, 0.5, 0.0]  # Peace 1, Affection 0.5 (one of two), Esteem 0
