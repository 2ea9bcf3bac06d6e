"""The ``beenet`` command line: one module per subcommand, imported only when it runs.

Each subcommand module defines ``build_parser(prog: str) -> argparse.ArgumentParser`` and
``run(args: argparse.Namespace) -> int``. Keeping the imports lazy makes ``beenet --help``
answer instantly instead of waiting for torch.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

from beenet.version import __version__
from beenet.errors import BeenetError, caused_by_interrupt

#: name -> (module, one-line summary). Order is the order of ``beenet --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("beenet.cli.demo", "synthesise the embedded dataset, train, evaluate and report (offline)"),
    "synth": ("beenet.cli.synth", "write a synthetic dataset in the exact BoLD layout"),
    "data": ("beenet.cli.data", "inspect a BoLD directory ('beenet data check DIR')"),
    "label": ("beenet.cli.label", "label the people of your own videos in the browser (rows for 'import')"),
    "import": ("beenet.cli.import_", "your own labelled videos as a dataset in BoLD's layout"),
    "prepare": ("beenet.cli.prepare", "decode every clip once into a cache that train and eval read"),
    "train": ("beenet.cli.train", "train a model on BoLD (or the synthetic data)"),
    "eval": ("beenet.cli.eval", "score a checkpoint or a predictions CSV with the BoLD metric"),
    "ablate": ("beenet.cli.ablate", "run an ablation study over model variants and seeds"),
    "predict": ("beenet.cli.predict", "per-person emotions over time from any video"),
    "view": ("beenet.cli.view", "interactive pages of predict results and training runs (offline HTML)"),
    "export": ("beenet.cli.export", "export a checkpoint ('beenet export onnx', 'beenet export pretrained')"),
    "models": ("beenet.cli.models", "list or fetch the model files beenet runs (the pose models)"),
    "completion": ("beenet.cli.completion", "print a shell completion script ('beenet completion bash')"),
}

USAGE = """usage: beenet [--version] [-v|-q] COMMAND [ARGS...]  (also: python -m beenet ...)

Bodily expression of emotion in in-the-wild video (BEE-NET and beyond).

commands:
{commands}

Run 'beenet COMMAND --help' for the options of one command.

example:
  beenet demo --out beenet-demo        # offline: synth data, train, evaluate, report
"""


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


VERBOSITY_FLAGS = {"-v": logging.DEBUG, "--verbose": logging.DEBUG, "-q": logging.WARNING, "--quiet": logging.WARNING}


def _verbosity(args: list[str], level: int) -> tuple[list[str], int]:
    """``-v``/``-q`` given after the subcommand (``beenet predict x.mp4 -v``) as before it: taken out
    of the subcommand's arguments (up to a ``--``), the last one wins."""
    kept: list[str] = []
    for i, a in enumerate(args):
        if a == "--":
            return kept + args[i:], level
        if a in VERBOSITY_FLAGS:
            level = VERBOSITY_FLAGS[a]
        else:
            kept.append(a)
    return kept, level


#: Commands whose process ends as soon as they return when run as the ``beenet`` command (not
#: when :func:`main` is called from Python): what they write is closed by then, and the
#: interpreter's shutdown (torch's teardown above all) took 0.7-1.1 s of every ``beenet
#: predict`` (docs/predict.md, "Speed"). ``BEENET_FULL_EXIT=1`` keeps the full shutdown.
QUICK_EXIT = frozenset({"predict"})


def console_main() -> None:
    """The ``beenet`` command and ``python -m beenet``: :func:`main`; then a :data:`QUICK_EXIT`
    command's process ends at once (output streams and logging flushed first, the exit status
    kept), any other's through the interpreter's usual shutdown."""
    code = main()
    command = next((a for a in sys.argv[1:] if a not in VERBOSITY_FLAGS), None)
    if command in QUICK_EXIT and not os.environ.get("BEENET_FULL_EXIT"):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
                pass
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    level = logging.INFO
    while argv and argv[0] in VERBOSITY_FLAGS:
        level = VERBOSITY_FLAGS[argv.pop(0)]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(f"beenet {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    rest, level = _verbosity(rest, level)
    if level >= logging.WARNING:
        os.environ["BEENET_NO_PROGRESS"] = "1"  # -q: no progress bars either
    if name not in COMMANDS:
        print(f"beenet: unknown command {name!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args = None
    try:
        module = importlib.import_module(COMMANDS[name][0])
        args = module.build_parser(f"beenet {name}").parse_args(rest)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"beenet {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A library that turned the Ctrl-C into its own error while cleaning up (torch.save does).
        if caused_by_interrupt(exc):
            print(f"beenet {name}: interrupted", file=sys.stderr)
            return 130
        if isinstance(exc, BeenetError):
            print(f"beenet {name}: error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.filename is not None:  # a path that cannot be made or written
            print(f"beenet {name}: error: {os_error_message(exc, getattr(args, 'out', None))}", file=sys.stderr)
            return 1
        raise


def os_error_message(exc: OSError, out: object = None) -> str:
    """One line for an OSError about a file (``/proc/x: No such file or directory``), naming
    ``--out`` when the file is it, inside it, or a temp file beside it."""
    target = str(exc.filename)
    text = f"{target}: {exc.strerror or exc}"
    if out is not None:
        out_path = os.path.abspath(str(out))
        path = os.path.abspath(target)
        if path == out_path or path.startswith(out_path + os.sep) or os.path.dirname(path) == os.path.dirname(out_path):
            text += f" (--out {out} cannot be created or written there: choose another --out)"
    return text
