"""Faults, round two (issue 23): checkpoints whose config lies about their weights, NaN weights
exported, a mistyped local path sent to the Hub, an ``--out`` that cannot be made.

Every case is a real damaged file through the real command: the absurd sizes in a child process
under an 8 GB address-space cap (before the fix each asked for 19-480 GB), the Hub case in a child
process whose ``HF_ENDPOINT`` is a listener on 127.0.0.1 that records every request."""

from __future__ import annotations

import http.server
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from _predict_helpers import make_checkpoint
from bold_fixture import write_bold_fixture
from beenet.artifacts.checkpoint import save_checkpoint
from beenet.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
CAP = 8 * 1024**3  # address space of the child: torch (CUDA builds too) loads, no model of 19+ GB can

#: name -> how it damages a checkpoint's config (the weights stay those of the tiny model).
DAMAGE = {
    "stream_channels": lambda c: c["model"].update(stream_channels=2_000_000),
    "kappa": lambda c: c["model"].update(kappa=10**8),
    "stream_layers": lambda c: c["model"].update(stream_layers=100_000),
    "image_size": lambda c: (c["model"].update(image_size=200_000), c["data"].update(image_size=200_000)),
    "skeleton_channels": lambda c: c["model"].update(skeleton_channels=[1_000_000, 1_000_000]),
}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **extra}


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "good.pt")


@pytest.fixture(scope="module")
def skeleton_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("skel") / "skel.pt", skeleton=True, data_skeleton=True)


def _damaged(src: Path, dst: Path, edit) -> Path:
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt["config"])
    torch.save(ckpt, dst)
    return dst


_SCRIPT = """
import contextlib, io, json, sys
from beenet.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            rc = main(argv)
    except BaseException as exc:  # the old code: an allocation refused under the cap, a traceback
        rc = f"{type(exc).__name__}: {str(exc)[:200]}"
    out[name] = [rc, err.getvalue()[-800:]]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_absurd_sizes_are_refused_before_the_model_is_built(good, skeleton_ckpt, tmp_path):
    """eval, predict, export onnx and export pretrained of a checkpoint whose config names sizes its
    weights do not hold (or a frame of 200000 px): one error naming the file and the field, exit 1,
    no allocation (the child runs under an 8 GB cap; before the fix each asked for 19-480 GB)."""
    bold = write_bold_fixture(tmp_path / "BOLD_public", num_frames=6, width=32, height=32,
                              clips_per_split={"train": 1, "val": 1, "test": 1}).root
    cases = []
    for field, edit in DAMAGE.items():
        src = skeleton_ckpt if field == "skeleton_channels" else good
        path = _damaged(src, tmp_path / f"{field}.pt", edit)
        cases += [
            (f"{field}/onnx", ["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / f"{field}.onnx")]),
            (f"{field}/pretrained", ["export", "pretrained", "--checkpoint", str(path), "--out", str(tmp_path / f"{field}-dir")]),
            (f"{field}/eval", ["eval", "--checkpoint", str(path), "--data", str(bold), "--split", "val", "--device", "cpu"]),
            (f"{field}/predict", ["predict", str(tmp_path / "v.mp4"), "--checkpoint", str(path), "--out",
                                  str(tmp_path / f"{field}-pred"), "--device", "cpu", "--pose", "rcnn"]),
        ]
    (tmp_path / "v.mp4").write_bytes(b"")  # never opened: predict loads the model before any video
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(cases)], env=_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=_cap)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (rc, err) in results.items():
        field = name.split("/")[0]
        assert rc == 1, (name, rc, err)
        assert "Traceback" not in err and f"{field}.pt" in err and field in err, (name, err)
        assert "error:" in err, (name, err)
    assert not any(tmp_path.glob("*-dir/*")) and not list(tmp_path.glob("*.onnx"))  # nothing written


def test_the_weights_shapes_name_the_field(good, tmp_path):
    """In this process (a checked size allocates nothing): the field, its value and the weight."""
    path = _damaged(good, tmp_path / "c.pt", DAMAGE["stream_channels"])
    from beenet.artifacts.loader import load_model
    from beenet.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"c\.pt: model\.stream_channels is 2000000 but the weights hold 16"):
        load_model(path)


def test_export_pretrained_refuses_nan_weights_as_onnx_does(good, tmp_path, capsys):
    ckpt = torch.load(good, weights_only=True)
    key = "fusion.classifier.weight"
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], float("nan"))
    bad = save_checkpoint(tmp_path / "nan.pt", model=ckpt["model"], config=ckpt["config"], epoch=0)
    for argv in (["export", "pretrained", "--checkpoint", str(bad), "--out", str(tmp_path / "folder")],
                 ["export", "onnx", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"{bad}: 1 weight tensor(s) hold NaN/inf, e.g. {key}" in err, err
    assert not (tmp_path / "folder").exists() and not (tmp_path / "m.onnx").exists()


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def _answer(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def listener():
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_mistyped_local_path_never_reaches_the_hub(good, tmp_path, listener):
    pytest.importorskip("huggingface_hub")
    endpoint, requests = listener
    (tmp_path / "run_base").mkdir()
    (tmp_path / "run_base" / "best.pt").write_bytes(good.read_bytes())
    env = _env(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)

    def export(checkpoint: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "beenet", "export", "onnx", "--checkpoint", checkpoint,
                               "--out", "m.onnx"], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    typo = export("run_base/best")
    assert typo.returncode == 1 and "Traceback" not in typo.stderr, typo.stderr
    assert "run_base/best: no such checkpoint file or folder (did you mean run_base/best.pt?)" in typo.stderr
    assert requests == []  # nothing went on the wire
    # The listener does record: a real Hub id (no local 'someone/') is asked of the endpoint.
    hub = export("someone/model")
    assert hub.returncode == 1 and "Traceback" not in hub.stderr, hub.stderr
    assert any("someone/model" in r for r in requests), requests


def test_a_hub_shaped_name_under_an_existing_folder_names_its_files(tmp_path, monkeypatch):
    from beenet.artifacts.pretrained import resolve_checkpoint
    from beenet.errors import CheckpointError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "last.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"runs/demo: no such checkpoint file or folder \(runs/ holds runs/last\.pt\)"):
        resolve_checkpoint("runs/demo")


needs_proc = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")


@needs_proc
@pytest.mark.parametrize("argv", [
    ["train", "--data", "{data}", "--out", "/proc/x", "--config", "demo"],
    ["eval", "--checkpoint", "{ckpt}", "--data", "{data}", "--out", "/proc/x"],
    ["ablate", "--data", "{data}", "--out", "/proc/x", "--seeds", "1"],
    ["export", "pretrained", "--checkpoint", "{ckpt}", "--out", "/proc/x"],
    ["export", "onnx", "--checkpoint", "{ckpt}", "--out", "/proc/x"],
    ["synth", "/proc/x", "--clips", "2"],
    ["demo", "--out", "/proc/x", "--quick"],
], ids=lambda a: "-".join(a[:2]))
def test_an_out_that_cannot_be_made_is_one_line(argv, good, tmp_path, capsys):
    data = write_bold_fixture(tmp_path / "BOLD_public", num_frames=6, width=32, height=32,
                              clips_per_split={"train": 1, "val": 1, "test": 1}).root
    argv = [a.format(data=data, ckpt=good) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: /proc/" in err and "(--out /proc/x cannot be created" in err, err
