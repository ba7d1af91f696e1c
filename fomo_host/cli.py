"""The ``fomo-host`` command line; each subcommand lives in :mod:`fomo_host.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .commands import COMMAND_MODULES
from .errors import FomoError
from .version import __version__

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
QUIET_LOGGERS = ("bitsandbytes.backends.cpu.ops",)
"""Loggers held to errors: bitsandbytes (imported by peft and galore-torch where installed) warns at every start on a
machine without its optional 4-bit CPU kernels; no component uses 4-bit layers, so the line is only noise."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors are one line too, like every other user error (argparse prints the usage block as well)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="fomo-host", description="Continual multimodal pretraining of CLIP models, as plugins.")
    parser.add_argument("--version", action="version", version=f"fomo-host {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"fomo_host.commands.{name}").add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except FomoError as exc:
        # one line even where a message quotes something with a line break in it
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        # the reader (head, less) stopped early: no message. Point stdout at devnull so the interpreter's
        # final flush does not raise again; status 1, as rich's tables and Python's documentation do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        from .run_directory import explain, is_environment_error

        if not is_environment_error(exc):
            raise
        # the machine's state (a disk that filled while a report or an export was written, a place gone read-only):
        # one line; the writers leave no temporary file behind
        print(f"error: cannot write {explain(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
