"""Faults of ``beenet view`` (issue 23): a results folder is not trusted.

Everything the viewer reads or serves resolves (links followed) inside the folder, or for input
videos inside a folder the user named (``--videos``); the server answers only requests addressed
to a local name (DNS rebinding); a bad summary, a binary CSV, a bad ``meta.json``, a per-frame
table without ``frame``, a pickled or misshaped keypoints file cost only their own video its page,
with one line naming the file and exit status 1 (as ``predict`` with some videos failed).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from footage import footage

from beenet.cli import main
from beenet.inference.table import COLUMNS, PredictionTable
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES


def _table(path: Path, video: str = "clip.mp4", people: int = 1) -> Path:
    """A window table as predict writes it (csv + meta.json): two windows per person."""
    rows = []
    for pid in range(people):
        for s in (0, 10):
            row = {c: 0.0 for c in COLUMNS}
            row.update(video=video, person_id=pid, start_frame=s, end_frame=s + 19, start_s=s / 25, end_s=(s + 19) / 25,
                       box_x=10.0 + 40 * pid, box_y=20.0, box_w=30.0, box_h=60.0)
            row.update({c: 0.1 + 0.02 * k for k, c in enumerate(CATEGORIES)})
            row.update({c: 5.0 for c in VAD_NAMES})
            rows.append(row)
    t = PredictionTable(pd.DataFrame(rows, columns=list(COLUMNS)))
    t.set_metadata(video=video, fps=25.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    t.write(path)
    return path


def _summary(out: Path, videos: list[dict]) -> None:
    (out / "predict_summary.json").write_text(json.dumps({"videos": videos, "failures": []}))


def _view(out: Path, capsys, *extra: str) -> tuple[int, str]:
    rc = main(["view", str(out), *extra])
    return rc, capsys.readouterr().err


# ---------------------------------------------------------------------------- paths out of DIR
@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_summary_outputs_outside_the_folder_are_refused(tmp_path, capsys, how):
    out, elsewhere = tmp_path / "res", tmp_path / "X"
    _table(out / "ok.csv")
    _table(elsewhere / "good.csv")
    if how == "dotdot":
        name = "../X/good.csv"
    elif how == "absolute":
        name = str(elsewhere / "good.csv")
    else:
        (out / "good.csv").symlink_to(elsewhere / "good.csv")
        name = "good.csv"
    _summary(out, [{"video": "ok.mp4", "outputs": ["ok.csv"]}, {"video": "good.mp4", "outputs": [name]}])
    rc, err = _view(out, capsys)
    assert rc == 1
    assert not (elsewhere / "good.html").exists() and not (out / "good.html").exists()
    assert (out / "ok.html").is_file()  # the other video is still viewed
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    assert "videos[1]" in line or "good.csv" in line
    assert "outside" in line and str(out) in line
    assert "good.csv" in (out / "index.html").read_text()  # the index lists what was refused


def _served(out: Path, media: dict, requests: list[tuple[str, dict]]) -> list[tuple[int, bytes]]:
    """Real GET requests (http.client, one connection each) to a real server on 127.0.0.1."""
    from beenet.view.server import make_server

    srv = make_server(out, 0, media)  # bound (listening) when it returns: no wait needed
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    port = srv.server_address[1]
    got = []
    try:
        for path, headers in requests:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.request("GET", path, headers={k: v.replace("PORT", str(port)) for k, v in headers.items()})
                r = conn.getresponse()
                got.append((r.status, r.read()))
            finally:
                conn.close()
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=20)
    assert not t.is_alive()
    return got


def test_serve_never_serves_a_file_outside_the_folder(tmp_path, capsys):
    from beenet.view import results

    out = tmp_path / "res"
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the browser")
    _table(out / "a.csv")
    _table(out / "b.csv")
    _summary(out, [{"video": str(secret), "outputs": ["a.csv"]}, {"video": "/etc/passwd", "outputs": ["b.csv"]}])
    (out / "peek.txt").symlink_to(secret)
    media = results.media_map(out)  # what 'beenet view --serve' serves under /_media/
    assert media == {}
    got = _served(out, media, [("/_media/a.mp4", {}), ("/_media/b", {}), ("/peek.txt", {}),
                                    ("/a.csv", {})])
    assert [s for s, _ in got] == [404, 404, 403, 200]
    assert not any(b"not for the browser" in body or b"root:" in body for _, body in got)
    view = results.build_results_view(out)
    assert view.media == {} and not view.problems
    assert any("lies outside" in n and str(secret) in n for n in view.notes)
    a = json.loads((out / "a.html").read_text().split("window.BEENET=")[1].split(";</script>")[0])
    assert a["video"] is None  # the page does not point at it either
    # a real video in a folder the user names plays, and only that file is mapped
    video = footage("carphone.mp4")
    _summary(out, [{"video": str(video), "outputs": ["a.csv"]}, {"video": "/etc/passwd", "outputs": ["b.csv"]}])
    view = results.build_results_view(out, videos=[video.parent])
    assert list(view.media.values()) == [video.resolve()]
    (key,) = view.media
    ((status, body),) = _served(out, view.media, [("/" + key, {})])
    assert status == 200 and body == video.read_bytes()
    rc, err = _view(out, capsys, "--videos", str(video.parent))
    assert rc == 0 and "/etc/passwd" in err and "not shown" in err


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1:PORT", 200), ("localhost:PORT", 200), ("LocalHost:PORT", 200), ("[::1]:PORT", 200),
    ("evil.example:PORT", 403), ("evil.example", 403), ("127.0.0.1:1", 403), ("localhost.evil.example:PORT", 403),
    ("", 403),
])
def test_serve_answers_only_requests_for_a_local_host(tmp_path, host, status):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends its own
    name in ``Host``; it gets 403 with a body that says why, never the files."""
    out = tmp_path / "res"
    _table(out / "a.csv")
    assert main(["view", str(out)]) == 0
    ((got, body),) = _served(out, {}, [("/index.html", {"Host": host})])
    assert got == status
    if status == 403:
        assert b"window.BEENET" not in body and b"127.0.0.1" in body and b"host" in body
    else:
        assert b"window.BEENET" in body


# ---------------------------------------------------------------------------- bad files
def _pickled(path: Path, marker: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    np.save(path, np.array([Boom()], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("fault", ["summary", "binary_csv", "meta", "frames_no_frame", "pickled_npy",
                                   "misshaped_npy", "nan_score", "huge_frame"])
def test_a_bad_file_costs_only_its_video_its_page(tmp_path, capsys, fault):
    out = tmp_path / "res"
    _table(out / "a.csv")
    _table(out / "b.csv")
    _summary(out, [{"video": "a.mp4", "outputs": ["a.csv"]}, {"video": "b.mp4", "outputs": ["b.csv"]}])
    marker = tmp_path / "pickle-ran"
    bad = {
        "summary": out / "predict_summary.json", "binary_csv": out / "b.csv", "meta": out / "b.meta.json",
        "frames_no_frame": out / "b_frames.csv", "pickled_npy": out / "b_keypoints.npy",
        "misshaped_npy": out / "b_keypoints.npy", "nan_score": out / "b.csv", "huge_frame": out / "b.csv",
    }[fault]
    if fault == "summary":
        bad.write_text('{"videos": [')
    elif fault == "binary_csv":
        bad.write_bytes(b"person_id,start_frame,end_frame,valence\n" + bytes(range(256)) * 8)
    elif fault == "meta":
        bad.write_text("{not json")
    elif fault == "frames_no_frame":
        pd.DataFrame({"person_id": [0], "box_x": [1.0], "box_y": [1.0], "box_w": [5.0], "box_h": [9.0]}).to_csv(bad, index=False)
    elif fault == "pickled_npy":
        _pickled(bad, marker)
    elif fault == "misshaped_npy":
        np.save(bad, np.zeros((4, 2 + 3 * NUM_JOINTS - 1)))
    else:
        df = pd.read_csv(bad)
        df.loc[1, "valence" if fault == "nan_score" else "end_frame"] = np.nan if fault == "nan_score" else 10**15
        df.to_csv(bad, index=False)
    rc, err = _view(out, capsys)
    assert not marker.exists(), "the pickle ran"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    if fault == "summary":  # the tables are found without it: both viewed
        assert rc == 1 and len(errors) == 1 and str(bad) in errors[0] and "predict summary" in errors[0]
        assert (out / "a.html").is_file() and (out / "b.html").is_file()
        return
    assert rc == 1, err
    assert len(errors) == 1 and str(bad) in errors[0], errors
    assert (out / "a.html").is_file() and not (out / "b.html").exists()
    want = {"frames_no_frame": "'frame'", "pickled_npy": "pickle", "misshaped_npy": f"want [N, {2 + 3 * NUM_JOINTS}]",
            "nan_score": "row 2, column 'valence'", "huge_frame": "row 2, column 'end_frame'"}.get(fault)
    assert want is None or want in errors[0], errors[0]
    assert "Traceback" not in err


def test_run_page_reads_no_file_through_a_link_out_of_the_folder(tmp_path):
    from beenet.view import write_run_view

    run, secret = tmp_path / "run", tmp_path / "secret.yaml"
    run.mkdir()
    secret.write_text("token: not-for-the-page\n")
    (run / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    (run / "config.yaml").symlink_to(secret)
    page = write_run_view(run).read_text()
    assert "not-for-the-page" not in page and "0.5" in page
