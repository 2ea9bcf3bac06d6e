"""``beenet view``: pages of predict results and runs, checked in Python and in headless Chromium.

The browser tests drive Debian's ``chromium`` through Playwright (``executable_path``: Playwright's
own browser download does not work offline); they skip with the reason when either is missing
(``.ci/run`` installs both).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _predict_helpers import make_checkpoint
from footage import footage

from beenet.cli import main
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES

FRAMES_COLUMNS = ["video", "frame", "time_s", "person_id", "confidence", "box_x", "box_y", "box_w", "box_h",
                  "interpolated", "joints", *CATEGORIES, *VAD_NAMES]




@pytest.fixture(scope="module")
def bikes_results(tmp_path_factory, blazepose_models):
    """A real ``beenet predict --per-frame --save-keypoints --html`` run on real footage
    (bikes.mp4: several people, shot cuts) and its view."""
    video = footage("bikes.mp4")
    d = tmp_path_factory.mktemp("view")
    ckpt = make_checkpoint(d / "still.pt", fusion_form="odds")
    out = d / "res"
    rc = main(["predict", str(video), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu",
               "--window", "1", "--stride", "0.5", "--per-frame", "--save-keypoints", "--html"])
    assert rc == 0
    assert (out / "index.html").is_file() and (out / "bikes.html").is_file()
    return out


@pytest.fixture(scope="module")
def empty_results(tmp_path_factory):
    """A result with nobody in it: an empty table (what predict writes for such a video, issue 11)."""
    from beenet.inference.table import COLUMNS, PredictionTable
    from beenet.view import write_results_view

    out = tmp_path_factory.mktemp("empty")
    video = footage("carphone.mp4")
    t = PredictionTable(pd.DataFrame({c: pd.Series(dtype=float) for c in COLUMNS}))
    t.set_metadata(video="carphone.mp4", fps=29.97)
    t.write(out / "carphone.csv")
    (out / "predict_summary.json").write_text(json.dumps({"videos": [{"video": str(video), "outputs": ["carphone.csv"]}]}))
    write_results_view(out, videos=[video.parent])  # the video lies outside: the user names its folder
    return out


def page_data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    m = re.search(r"<script>window.BEENET=(.*?);</script>", text, re.S)
    assert m, f"no embedded data in {page}"
    return json.loads(m.group(1))


def decode(b64: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=dtype)


# ---- pages, in Python ------------------------------------------------------------------------
@pytest.mark.slow
def test_results_view_embeds_the_per_frame_boxes_and_joints(bikes_results):
    index = bikes_results / "index.html"
    data = page_data(bikes_results / "bikes.html")
    frames = pd.read_csv(bikes_results / "bikes_frames.csv")
    kp = np.load(bikes_results / "bikes_keypoints.npy")
    assert "bikes.html" in index.read_text() and page_data(index)["videos"][0]["people"] == len(data["people"])
    assert {p["id"] for p in data["people"]} == set(frames["person_id"])
    assert len(data["people"]) >= 1  # the cyclist (the suit man's 15 frames are under --min-track)
    for p in data["people"]:
        sub = frames[frames["person_id"] == p["id"]].sort_values("frame")
        np.testing.assert_array_equal(decode(p["frames"], np.int32), sub["frame"].to_numpy())
        box = decode(p["box"], np.int16).reshape(-1, 4) / data["subpixel"]
        np.testing.assert_allclose(box, sub[["box_x", "box_y", "box_w", "box_h"]].to_numpy(), atol=0.13)
        # each frame points at the window row whose scores the per-frame row carries
        win = decode(p["win"], np.int32)
        cats = np.asarray(data["windows"]["cat"]).reshape(-1, 26)
        ok = win >= 0
        np.testing.assert_allclose(cats[win[ok]], sub.loc[ok, list(CATEGORIES)].to_numpy(), atol=6e-4)
        mine = kp[kp[:, 1] == p["id"]]
        xy = decode(p["kp"]["xy"], np.int16).reshape(-1, NUM_JOINTS, 2) / data["subpixel"]
        c = decode(p["kp"]["c"], np.uint8).reshape(-1, NUM_JOINTS)
        seen = c > 0
        ref = mine[:, 2:].reshape(-1, NUM_JOINTS, 3)
        np.testing.assert_allclose(xy[seen], ref[..., :2][seen], atol=0.13)
    assert data["video"]["file"].endswith("bikes.mp4") and data["width"] == 640 and data["height"] == 272


@pytest.mark.slow
def test_results_view_without_optional_files_uses_window_boxes(bikes_results, tmp_path):
    out = tmp_path / "res"
    shutil.copytree(bikes_results, out)
    (out / "bikes_frames.csv").unlink()
    (out / "bikes_keypoints.npy").unlink()
    (out / "predict_summary.json").unlink()  # found by its table alone
    from beenet.view import write_results_view

    write_results_view(out)
    data = page_data(out / "bikes.html")
    table = pd.read_csv(out / "bikes.csv")
    assert data["sources"] == {"windows": "bikes.csv", "frames": None, "keypoints": None}
    assert {p["id"] for p in data["people"]} == set(table["person_id"])
    p = data["people"][0]
    rows = table[table["person_id"] == p["id"]]
    fr = decode(p["frames"], np.int32)
    assert fr.min() == rows["start_frame"].min() and "kp" not in p
    box = decode(p["box"], np.int16).reshape(-1, 4)[0] / data["subpixel"]
    first = rows.sort_values("start_frame").iloc[0]
    np.testing.assert_allclose(box, first[["box_x", "box_y", "box_w", "box_h"]].to_numpy(float), atol=0.13)


def _late_people(data: dict, frames: pd.DataFrame) -> list[tuple[dict, int, int]]:
    """People whose first window starts before they were first seen: (person, window start, first seen)."""
    w = data["windows"]
    late = []
    for p in data["people"]:
        starts = [s for s, q in zip(w["start"], w["person"]) if q == p["id"]]
        first = int(frames.loc[frames["person_id"] == p["id"], "frame"].min())
        if starts and min(starts) < first:
            late.append((p, min(starts), first))
    return late


@pytest.mark.slow
def test_results_view_scores_only_the_frames_a_person_was_seen(bikes_results):
    """Issue 22 item 7: the heat map and V/A/D lines are drawn over the spans where the person was
    seen (``seen``), not from the start of a window that began before they appeared."""
    data = page_data(bikes_results / "bikes.html")
    frames = pd.read_csv(bikes_results / "bikes_frames.csv")
    assert _late_people(data, frames), "no person appears after their first window starts: the check has no teeth"
    for p in data["people"]:
        spans = decode(p["seen"], np.int32).reshape(-1, 2)
        fr = frames.loc[frames["person_id"] == p["id"], "frame"].to_numpy()
        assert spans[0, 0] == fr.min() and spans[-1, 1] == fr.max()
        inside = ((fr[:, None] >= spans[:, 0]) & (fr[:, None] <= spans[:, 1])).any(1)
        assert inside.all() and (spans[:, 0] <= spans[:, 1]).all()


def test_an_unplayable_video_gets_an_h264_proxy_once(tmp_path):
    import av

    from beenet.view.proxy import make_proxy, probe

    src = footage("face_noface.mov")  # HEVC in a .mov: not played by Chromium
    info = probe(src)
    assert not info.playable(src)
    dest = make_proxy(src, tmp_path / "x_proxy.mp4")
    p = probe(dest)
    assert p.playable(dest) and p.codec == "h264" and (p.width, p.height) == (info.width // 2 * 2, info.height // 2 * 2)
    with av.open(str(dest)) as c:
        assert abs(c.streams.video[0].frames - info.num_frames) <= 1
    mtime = dest.stat().st_mtime_ns
    make_proxy(src, dest)
    assert dest.stat().st_mtime_ns == mtime


def test_server_answers_range_requests_and_serves_outside_videos(empty_results):
    from beenet.view.results import media_map
    from beenet.view.server import make_server

    media = media_map(empty_results, videos=[footage("carphone.mp4").parent])
    key = "_media/carphone.mp4"
    assert key in media
    srv = make_server(empty_results, 0, media)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        data = media[key].read_bytes()
        req = urllib.request.Request(base + key, headers={"Range": "bytes=100-199"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 206 and r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
            assert r.read() == data[100:200]
        req = urllib.request.Request(base + key, headers={"Range": "bytes=-10"})
        with urllib.request.urlopen(req) as r:
            assert r.read() == data[-10:]
        with urllib.request.urlopen(base + "index.html") as r:
            assert r.status == 200 and b"window.BEENET" in r.read()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "_media/../../etc/passwd")
        assert e.value.code == 404
    finally:
        srv.shutdown()
        srv.server_close()


def _fake_run(d: Path) -> Path:
    (d / "run").mkdir(parents=True)
    rows = ["epoch,lr,train_loss,train_categories,val_mAP,val_mRA,val_mR2,val_ERS,time_s"]
    for e in range(1, 6):
        rows.append(f"{e},0.01,{2 / e:.4f},{1 / e:.4f},{0.1 + 0.05 * e},{0.5 + 0.05 * e},{-0.5 + 0.15 * e},{0.1 * e},3")
    (d / "run" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (d / "run" / "config.yaml").write_text("model:\n  name: demo\n")
    ev = d / "eval-val"
    ev.mkdir()
    pc = {c: {"AP": 0.2 + 0.01 * i, "AUC": 0.6, "positives": 3, "support": 20} for i, c in enumerate(CATEGORIES)}
    (ev / "metrics.json").write_text(json.dumps({"mAP": 0.4, "mRA": 0.7, "mR2": 0.1, "ERS": 0.4, "split": "val",
                                                  "protocol": "paper", "n": 20, "per_category": pc,
                                                  "chance": {"mAP": 0.11, "mRA": 0.5, "mR2": 0.0, "ERS": 0.15}}))
    rng = np.random.default_rng(0)
    from beenet.view.run import write_pr_curves

    write_pr_curves(ev, rng.random((20, 26)), rng.random((20, 26)))
    return d


def test_run_view_shows_curves_chance_bars_pr_and_config(tmp_path):
    d = _fake_run(tmp_path / "demo")
    assert main(["view", str(d)]) == 0
    data = page_data(d / "report.html")
    assert data["metrics"]["val_ERS"][-1] == pytest.approx(0.5)
    assert data["chance"]["ERS"] == 0.15 and data["config"].startswith("model:")
    (ev,) = data["evals"]
    assert ev["per_category"]["Peace"]["AP"] == pytest.approx(0.2)
    rec, prec = ev["pr"]["Peace"]
    assert rec[-1] == 1.0 and all(0 <= v <= 1 for v in prec) and rec == sorted(rec)


def test_view_of_a_folder_without_results_says_so(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")  # not a predict table: left alone
    assert main(["view", str(tmp_path)]) == 0
    assert page_data(tmp_path / "index.html")["videos"] == []


@pytest.mark.slow
@pytest.mark.usefixtures("blazepose_models")
def test_predict_html_writes_the_view(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "still.pt", fusion_form="odds")
    out = tmp_path / "res"
    rc = main(["predict", str(footage("carphone.mp4")), "--checkpoint", str(ckpt), "--out", str(out),
               "--window", "2", "--stride", "1", "--device", "cpu", "--html"])
    assert rc == 0, capsys.readouterr()
    assert "view: " in capsys.readouterr().out
    data = page_data(out / "carphone.html")
    assert data["people"] and page_data(out / "index.html")["videos"][0]["page"] == "carphone.html"


# ---- in a real browser -----------------------------------------------------------------------
def _missing(why: str) -> None:
    """Skip, except under CI (``CI=true``), where the browser tests must run."""
    import os

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}; CI must run the browser tests")
    pytest.skip(why)


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install playwright (the 'test' extra); .ci/run installs it")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        _missing("no chromium on PATH: apt-get install -y chromium (.ci/run installs it)")
    return sync_playwright, exe


@pytest.fixture(scope="module")
def browser():
    sync_playwright, exe = _browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert not errors, errors


def _shot(pg, name: str) -> None:
    import os

    d = os.environ.get("BEENET_VIEW_SHOTS")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(d) / f"{name}.png"))


def _seek(pg, frame: int) -> None:
    pg.evaluate(f"window.__beenetSeekFrame({frame})")
    pg.wait_for_function(f"document.getElementById('overlay').dataset.frame == '{frame}' && "
                         "document.querySelector('video').readyState >= 2 && !document.querySelector('video').seeking")


@pytest.mark.slow
def test_browser_draws_the_per_frame_boxes(bikes_results, page):
    frames = pd.read_csv(bikes_results / "bikes_frames.csv")
    counts = frames.groupby("frame")["person_id"].nunique()
    scored = frames.dropna(subset=[CATEGORIES[0]]).groupby("frame")["person_id"].nunique()
    # the last one (for the screenshot): the busiest frame among those with a scored person
    chosen = [int(counts.index[0]), int(counts.index[len(counts) // 3]), int(counts.index[-1]), int(scored.idxmax())]
    page.goto((bikes_results / "bikes.html").as_uri())
    page.wait_for_function("document.querySelector('video').readyState >= 1")
    from beenet.inference.timeline import person_colour

    edge_hits = edge_total = 0
    inner_alpha: list[int] = []
    for f in chosen:
        _seek(page, f)
        drawn = page.evaluate("window.__beenetDrawn")
        rows = frames[frames["frame"] == f].set_index("person_id")
        assert sorted(d["person"] for d in drawn) == sorted(rows.index.tolist()), f
        for d in drawn:
            row = rows.loc[d["person"]]
            np.testing.assert_allclose([d["x"], d["y"], d["w"], d["h"]], row[["box_x", "box_y", "box_w", "box_h"]].to_numpy(float), atol=2)
            # the canvas itself: the pixel on the box's left edge at mid-height has the person's colour
            # where the per-frame row's box edge must be on the overlay (independent of the page's own numbers)
            cw = page.evaluate("document.getElementById('overlay').getBoundingClientRect().width")
            k = cw / 640  # bikes.mp4 is 640 px wide
            c = {"x": row["box_x"] * k, "y": row["box_y"] * k, "h": row["box_h"] * k}
            assert abs(d["canvas"]["x"] - c["x"]) <= 2 and abs(d["canvas"]["y"] - c["y"]) <= 2
            # (a 5x5 patch: the stroke is 2 px wide, centred on the edge)
            px = page.evaluate(f"""(() => {{ const cv = document.getElementById('overlay'), r = cv.width / cv.getBoundingClientRect().width;
                return Array.from(cv.getContext('2d').getImageData(Math.round({c['x']} * r) - 2, Math.round(({c['y']} + {c['h']} * 0.6) * r) - 2, 5, 5).data); }})()""")
            patch = np.array(px).reshape(-1, 4)
            edge_total += 1
            edge_hits += bool(((patch[:, 3] == 255) & (np.abs(patch[:, :3] - person_colour(d["person"])).max(1) <= 3)).any())
            if c["x"] > 4:  # 6 px right of the edge, inside the box: nothing drawn there but joints
                inner = page.evaluate(f"""(() => {{ const cv = document.getElementById('overlay'), r = cv.width / cv.getBoundingClientRect().width;
                    return Array.from(cv.getContext('2d').getImageData(Math.round(({c['x']} + 6) * r), Math.round(({c['y']} + {c['h']} * 0.6) * r), 1, 1).data); }})()""")
                inner_alpha.append(inner[3])
        shown = page.locator("#rows tbody tr").count()
        assert shown == len(rows)
    assert edge_hits >= 0.8 * edge_total, (edge_hits, edge_total)
    assert inner_alpha.count(0) >= len(inner_alpha) // 2, inner_alpha
    _shot(page, "video-page")


@pytest.mark.slow
def test_browser_heat_map_starts_where_the_person_appears(bikes_results, page):
    data = page_data(bikes_results / "bikes.html")
    frames = pd.read_csv(bikes_results / "bikes_frames.csv")
    page.goto((bikes_results / "bikes.html").as_uri())
    n = data["num_frames"]
    for p, start, first in _late_people(data, frames):
        before, after = (start + first - 1) // 2, first + 1
        px = page.evaluate(f"""(() => {{ const c = document.querySelector(".track[data-person='{p['id']}'] canvas"),
            r = c.width / c.getBoundingClientRect().width, plot = c.getBoundingClientRect().width - 108, g = c.getContext('2d');
            const at = (f) => Array.from(g.getImageData(Math.round((108 + (f + 0.5) / {n} * plot) * r), Math.round(4 * r), 1, 1).data);
            return [at({before}), at({after})]; }})()""")
        assert px[0][:3] == [240, 241, 244], (p["id"], before, px)  # grey: not seen yet
        assert px[1][:3] != [240, 241, 244], (p["id"], after, px)  # the window's colour once seen
    _shot(page, "video-page-heat-map")


@pytest.mark.slow
def test_browser_timeline_click_seeks_and_keys_step(bikes_results, page):
    page.goto((bikes_results / "bikes.html").as_uri())
    page.wait_for_function("document.querySelector('video').readyState >= 1")
    data = page_data(bikes_results / "bikes.html")
    track = page.locator(".track").first
    box = track.bounding_box()
    label_w = 108
    x = label_w + 0.75 * (box["width"] - label_w)
    track.click(position={"x": x, "y": 40})
    expected = int(0.75 * data["num_frames"])
    page.wait_for_function("!document.querySelector('video').seeking")
    t = page.evaluate("document.querySelector('video').currentTime")
    assert abs(t * data["fps"] - expected) <= 2, (t, expected)
    f0 = int(page.evaluate("document.getElementById('overlay').dataset.frame"))
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.getElementById('overlay').dataset.frame == '{f0 + 1}'")
    page.keyboard.press("Space")
    page.wait_for_function("!document.querySelector('video').paused")
    page.keyboard.press("Space")
    page.wait_for_function("document.querySelector('video').paused")


@pytest.mark.slow
def test_browser_person_filter_hides_a_person(bikes_results, page):
    frames = pd.read_csv(bikes_results / "bikes_frames.csv")
    counts = frames.groupby("frame")["person_id"].nunique()
    f = int(counts.idxmax())
    ids = sorted(frames.loc[frames["frame"] == f, "person_id"])
    page.goto((bikes_results / "bikes.html").as_uri())
    _seek(page, f)
    hide = ids[0]
    page.locator(f".chip[data-person='{hide}'] input").uncheck()
    drawn = page.evaluate("window.__beenetDrawn")
    assert hide not in [d["person"] for d in drawn] and len(drawn) == len(ids) - 1
    assert not page.locator(f"#person-{hide}").is_visible()
    keep = ids[-1]
    assert keep < 10
    page.keyboard.press(str(keep))  # only that person
    assert [d["person"] for d in page.evaluate("window.__beenetDrawn")] == [keep]
    assert page.locator(".chip.off").count() == page.locator(".chip").count() - 1
    page.keyboard.press("Escape")  # everyone again
    assert page.locator(".chip.off").count() == 0
    assert len(page.evaluate("window.__beenetDrawn")) == len(ids)


@pytest.mark.slow
def test_browser_makes_no_request_outside_the_local_server(bikes_results, page):
    from beenet.view.results import media_map
    from beenet.view.server import make_server

    srv = make_server(bikes_results, 0, media_map(bikes_results, videos=[footage("bikes.mp4")]))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}/"
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    try:
        page.goto(base + "index.html")
        _shot(page, "index")
        page.click("text=bikes.mp4")
        page.wait_for_function("document.querySelector('video') && document.querySelector('video').readyState >= 1")
        n = page.evaluate("window.BEENET.num_frames")
        _seek(page, n - 5)  # seeking near the end needs range requests
        assert page.evaluate("document.querySelector('video').src").startswith(base + "_media/")
    finally:
        srv.shutdown()
        srv.server_close()
    outside = [u for u in urls if not (u.startswith(base) or u.startswith(("data:", "blob:")))]
    assert urls and not outside, outside


@pytest.mark.slow
def test_browser_empty_result_says_nobody_was_found(empty_results, page):
    page.goto((empty_results / "carphone.html").as_uri())
    msg = page.locator("#empty")
    assert msg.is_visible() and "Nobody was found" in msg.inner_text()
    _shot(page, "empty-video")
    page.goto((empty_results / "index.html").as_uri())
    assert "nobody found" in page.locator("#videos").inner_text()
    _shot(page, "empty-index")


@pytest.mark.slow
def test_browser_run_page_draws_its_charts(tmp_path, page):
    d = _fake_run(tmp_path / "demo")
    from beenet.view import write_run_view

    write_run_view(d)
    page.goto((d / "report.html").as_uri())
    assert page.locator("#curves svg").count() >= 5
    assert page.locator("text=chance").count() >= 1
    assert "name: demo" in page.locator("#config").inner_text()
    _shot(page, "run-page")


def test_a_window_row_past_32767_is_pointed_at_exactly():
    """A long video has more window rows than an int16 holds (an hour, 10 people, a window a
    second: 36,000): each frame's index into the rows reaches the right one."""
    from beenet.view.results import _window_data, person_data

    people, per = 200, 170  # 34,000 rows
    rows = [{"person_id": p, "start_frame": 10 * k, "end_frame": 10 * k + 9, "box_x": 1.0, "box_y": 2.0, "box_w": 3.0, "box_h": 4.0,
             **dict.fromkeys(CATEGORIES, 0.0), **dict.fromkeys(VAD_NAMES, 0.0)}
            for p in range(people) for k in range(per)]
    df = pd.DataFrame(rows)
    df.loc[df.index[-1], CATEGORIES[0]] = 0.5  # the last row, of the last person
    data = person_data(df, _window_data(df), None, None, 10 * per)
    last = data[-1]
    win = decode(last["win"], np.int32)
    frames = decode(last["frames"], np.int32)
    assert win.max() == len(df) - 1 > 32767
    assert set(win[frames >= 10 * (per - 1)].tolist()) == {len(df) - 1}
