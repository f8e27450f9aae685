"""Phantom seed lists as the scripts and benchmarks take them on the command line: ``"2000-2099"``, ``"0,8,12"``
or ``"1,3,5-7"``."""
from __future__ import annotations

import argparse

from ..errors import InputError


def parse_seeds(text: str) -> list[int]:
    """``"0-19"`` or ``"1,3,5-7"`` -> sorted unique non-negative seeds.

    Raises:
        InputError: a part that is not an integer or a range ``LO-HI`` with ``0 <= LO <= HI``, or no seed at all.
    """
    seeds: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise InputError(f"seeds {text!r}: {part!r} is neither a seed nor a range LO-HI") from None
        if first < 0 or last < first:
            raise InputError(f"seeds {text!r}: range {part!r} is empty or negative")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise InputError(f"seeds {text!r}: no seed given")
    return sorted(seeds)


def seeds_argument(text: str) -> list[int]:
    """:func:`parse_seeds` as an ``argparse`` ``type=``: its error message reaches the user unchanged."""
    try:
        return parse_seeds(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


__all__ = ["parse_seeds", "seeds_argument"]
