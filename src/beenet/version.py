"""beenet's version: the one place it is written (read by pyproject, checkpoints, tables)."""

__version__ = "0.1.0"
