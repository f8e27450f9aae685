"""Entry point of the ``breastlesionseg`` command.

Each sub-command lives in its own module in this package and exposes
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
Modules are imported lazily by name so that a slow import (torch) only happens when needed.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import BreastLesionSegError

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
)

log = logging.getLogger("breastlesionseg")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="breastlesionseg",
        description="Breast-lesion segmentation in breast DCE-MRI (research use; not a medical device).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":  # not written yet in this checkout
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 bad input, 1 other failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BreastLesionSegError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
