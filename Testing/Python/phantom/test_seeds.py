"""Seed lists of the scripts and benchmarks (breastlesionseg.phantom.seeds)."""
import argparse

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument


@pytest.mark.parametrize("text, seeds", [
    ("2000-2003", [2000, 2001, 2002, 2003]),
    ("0,8,12", [0, 8, 12]),
    (" 7 , 1-3, 2 ,", [1, 2, 3, 7]),
    ("5-5", [5]),
])
def test_parse_seeds_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, why", [
    ("5-2", "empty or negative"),
    ("a-3", "neither a seed nor a range"),
    ("1,x", "neither a seed nor a range"),
    ("", "no seed given"),
    (" , ", "no seed given"),
])
def test_parse_seeds_names_the_bad_part(text, why):
    with pytest.raises(InputError, match=why):
        parse_seeds(text)


def test_seeds_argument_keeps_the_message_for_argparse():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=seeds_argument)
    assert parser.parse_args(["--seeds", "3-4,9"]).seeds == [3, 4, 9]
    with pytest.raises(argparse.ArgumentTypeError, match="range '9-1' is empty"):
        seeds_argument("9-1")
