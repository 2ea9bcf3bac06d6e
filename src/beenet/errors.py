"""Exceptions raised by beenet. Each names the file, row, key or value at fault."""

from __future__ import annotations

from pathlib import Path


class BeenetError(Exception):
    """Base class of every error beenet raises on purpose (the CLI prints these without a trace)."""


class BoLDFormatError(BeenetError, ValueError):
    """A BoLD file does not follow the release's format."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = reason
        where = f"{self.file}, line {line}" if line is not None else self.file
        super().__init__(f"{where}: {reason}")


class DataNotFoundError(BeenetError, FileNotFoundError):
    """A directory, video or joints file that should exist does not."""


class VideoDecodeError(BeenetError, RuntimeError):
    """A video cannot be opened or decoded."""


class ConfigError(BeenetError, ValueError):
    """An unknown configuration key, or a value of the wrong type."""


class CheckpointError(BeenetError, ValueError):
    """A checkpoint that is not beenet's, is corrupt, or belongs to another model."""


class PredictionsError(BeenetError, ValueError):
    """A predictions file that does not match the instances it should score."""


def caused_by_interrupt(exc: BaseException) -> bool:
    """True when ``exc`` is a KeyboardInterrupt or was raised while handling one.

    Libraries that write files (``torch.save``'s zip writer, PyAV) can turn a Ctrl-C that lands
    inside them into their own error while cleaning up; the interrupt is still what happened.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False
