"""A named pipe the test holds: a child process that reads it is stopped at a known point until
the test lets it go, so a signal sent then lands there whatever the load of the machine.

:func:`open_when_read` waits for the child to open the pipe (an event, not a time) and returns the
pipe's write end: until the test writes to it or closes it, the child stays blocked in its read.
:func:`signal_held` sends the child a signal there. :func:`gated_beenet` starts ``python -m beenet``
with such a pipe before a chosen call of one of its functions (:func:`gated_train`: before an
epoch).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Only against a hang (a child that never reaches the pipe and never ends): a test that passes
#: never waits this long, however loaded the machine.
HANG_S = 600.0


def open_when_read(pipe: Path, proc: subprocess.Popen, hang_s: float = HANG_S) -> int:
    """The write end of the named pipe ``pipe``, opened once ``proc`` has opened it for reading.

    A non-blocking open for writing succeeds only while a reader has the pipe open (or is opening
    it), so this polls for that event; ``proc`` ending first fails the test. From the return on,
    ``proc`` is blocked reading ``pipe`` until the caller writes to or closes the descriptor.
    """
    end = time.monotonic() + hang_s
    while True:
        try:
            return os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the process ended (rc {proc.returncode}) before it opened {pipe}: "
                                 f"{(err or '')[-3000:]}")
        if time.monotonic() > end:
            raise AssertionError(f"the process did not open {pipe} within {hang_s:.0f} s (hung?)")
        time.sleep(0.01)


def signal_held(pipe: Path, proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to ``proc`` while it waits on the named pipe ``pipe``, then close the pipe.

    Python acts on a signal between bytecodes, and a read the signal interrupts raises at once;
    but a SIGINT that arrives in the instant between the child's open of the pipe and its read
    (the open returns when this end opens) would leave the read waiting. Closing this end after
    the signal ends that read (end of file), and the pending KeyboardInterrupt is raised as it
    returns: the child stops at the pipe in every interleaving. A SIGKILL needs no such help.
    """
    writer = open_when_read(pipe, proc)
    try:
        proc.send_signal(sig)
    finally:
        os.close(writer)


@contextmanager
def reaped(proc: subprocess.Popen, hang_s: float = HANG_S) -> Iterator[subprocess.Popen]:
    """``proc``, killed after ``hang_s`` (a hang guard: a test reading its output line by line
    then sees the end of it) and in any case when the block ends."""
    guard = threading.Timer(hang_s, proc.kill)
    guard.daemon = True
    guard.start()
    try:
        yield proc
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


#: ``python -m beenet ARGS`` in which the function ``module:name`` waits, before its call number
#: ``calls`` (0-based), until the named pipe is written to or closed. SIGINT raises
#: KeyboardInterrupt, as in a command run from a terminal, even when pytest runs with SIGINT
#: ignored (a background job of a non-interactive shell).
_GATED = textwrap.dedent("""
    import importlib, runpy, signal, sys

    signal.signal(signal.SIGINT, signal.default_int_handler)

    pipe, target, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    real = getattr(module, name)
    count = 0

    def gated(*args, **kwargs):
        global count
        if count == calls:
            with open(pipe, "rb") as fh:
                fh.read()
        count += 1
        return real(*args, **kwargs)

    setattr(module, name, gated)
    sys.argv = ["beenet", *sys.argv[4:]]
    runpy.run_module("beenet", run_name="__main__", alter_sys=True)
""")


def gated_beenet(args: list[str], pipe: Path, target: str, calls: int) -> subprocess.Popen:
    """``python -m beenet ARGS`` in a child process whose function ``target`` (``module:name``,
    looked up in its module at each call) stops before its call number ``calls`` (0-based) on the
    named pipe ``pipe`` (created here), until the test lets it go or signals it there."""
    os.mkfifo(pipe)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _GATED, str(pipe), target, str(calls), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def gated_train(args: list[str], pipe: Path, epochs: int) -> subprocess.Popen:
    """``beenet train ARGS`` stopped on ``pipe`` at the start of its epoch number ``epochs`` of this
    process (0-based: a new run has then saved ``epochs`` epochs; a resumed one, that many more)."""
    return gated_beenet(args, pipe, "beenet.training.loop:_train_one_epoch", epochs)
