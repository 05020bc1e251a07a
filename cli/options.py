"""Range-checked option types for the `tensorweave` command line.

Each is an argparse `type=`: it turns the option's text into a value or raises `ArgumentTypeError`
saying what is allowed, and argparse prints that after the option's name (`argument --seed: must be
an integer >= 0, not -1`) and exits with status 2, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _int(text: str, base: int = 10) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


def int_range(low: int | None = None, high: int | None = None, base: int = 10) -> Callable[[str], int]:
    """An integer in [low, high] (either bound may be open); `base` 0 also takes 0x.. and 0b.. forms."""
    def parse(text: str) -> int:
        value = _int(text, base)
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                allowed = f">= {low}"
            elif low is None:
                allowed = f"<= {high}"
            else:
                allowed = f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}, not {text}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its 'invalid ... value' message
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)
address = int_range(0, base=0)             # a byte address: 4096, 0x1000
percent_below_100 = int_range(0, 99)       # a stall percentage: 100 would never let a transfer through


def power_of_two(text: str) -> int:
    value = _int(text)
    if value < 1 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two (1, 2, 4, ...), not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (refuses nan, inf and negative values)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text}")
    return value


def named_npy_file(text: str) -> str:
    """NAME=FILE.npy, returned as given (the file itself is read, and its format checked, by
    `compiler.arrays.read_npy`: one loader for the CLI and the Python API)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"must look like NAME=FILE.npy, not {text!r}")
    return text
