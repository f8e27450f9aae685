"""Entry point of the ``breastlesionseg`` command.

Each sub-command lives in its own module in this package and exposes
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``. Command modules import
only the standard library at module level (torch, MONAI, SimpleITK inside their ``run`` functions), so
``--help`` and ``--version`` answer without loading them; when the command line names a sub-command,
only that module is imported (``Testing/Python/cli/test_cli_main.py`` checks that torch stays unloaded).

Exit codes come from :mod:`breastlesionseg.errors` (``EXIT_*``): 0 ok, 1 unexpected failure or a check that
did not pass, 2 bad input, 3 model error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from typing import NoReturn, Sequence

from .. import __version__
from ..errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, BreastLesionSegError
from ..runtime.names import BACKEND_THREAD_NAME

#: sub-command modules, in help order (module names inside breastlesionseg.cli)
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_demo",
    "cmd_inspect",
    "cmd_phantom",
    "cmd_breast_mask",
    "cmd_segment",
    "cmd_evaluate",
    "cmd_model_summary",
    "cmd_export",
    "cmd_dataset",
    "cmd_train",
    "cmd_ultrasound", "cmd_train_ultrasound", "cmd_evaluate_ultrasound",
    "cmd_mammography",
)

log = logging.getLogger("breastlesionseg")


def _command_guess(module_name: str) -> str:
    """The sub-command a module conventionally registers: ``cmd_breast_mask`` -> ``breast-mask``."""
    return module_name[len("cmd_"):].replace("_", "-")


def _register(sub: argparse._SubParsersAction, name: str) -> bool:
    """Import ``cli.<name>`` and register its parser; ``False`` when the module does not exist (yet)."""
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.{name}":  # not written yet in this checkout
            return False
        raise
    module.register(sub)
    return True


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv`` naming a sub-command, only that command's module is imported.

    Args:
        argv: the command line (without the program name); ``None`` registers every sub-command.
    """
    parser = argparse.ArgumentParser(
        prog="breastlesionseg",
        description="Breast-lesion segmentation in breast DCE-MRI (research use; not a medical device).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is not None and "--version" in argv[:1]:
        return parser  # answered by argparse before any command is needed
    first = next((a for a in (argv or ()) if not a.startswith("-")), None)
    wanted = [m for m in COMMAND_MODULES if first is not None and _command_guess(m) == first]
    if wanted and _register(sub, wanted[0]) and first in sub.choices:
        return parser
    for name in COMMAND_MODULES:
        if name not in wanted:
            _register(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (see :mod:`breastlesionseg.errors`, ``EXIT_*``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except BreastLesionSegError as exc:
        log.error("%s", exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED


def run_process(argv: list[str] | None = None) -> NoReturn:
    """Process entry point (``breastlesionseg`` and ``python -m breastlesionseg.cli.main``): run and exit.

    When the run ends while the backend is still being prepared (a bad input found meanwhile), the process
    leaves at once with ``os._exit`` after flushing its output: finalising the interpreter under a thread
    that is inside a native runtime (OpenVINO compiling) can abort the process ("terminate called without
    an active exception", exit -6) instead of returning the input-error code.
    """
    code = main(argv)
    if any(t.name == BACKEND_THREAD_NAME and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run_process()
