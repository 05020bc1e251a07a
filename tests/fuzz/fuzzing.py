"""What every fuzz target shares: input counts per tier, a per-input alarm, the outcome rule, byte mutations.

The rule (issue 17): a loader given any bytes either succeeds or raises the project's error class
(TensorweaveError) with a message; any other exception, or an input that runs past PER_INPUT_SECONDS,
fails the test. Tiers: DEFAULT_EXAMPLES inputs per target in the default run, SLOW_EXAMPLES (100,000
unless $TW_FUZZ_EXAMPLES says otherwise) in the `slow` variants. $TW_FUZZ_REPORT names a file that
receives one JSON line of counts per target (docs/reliability.md's figures).
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import strategies as st
from tensorweave.errors import TensorweaveError

DEFAULT_EXAMPLES = int(os.environ.get("TW_FUZZ_DEFAULT_EXAMPLES", "200"))
SLOW_EXAMPLES = int(os.environ.get("TW_FUZZ_EXAMPLES", "100000"))
PER_INPUT_SECONDS = 20


class Hang(Exception):
    """An input ran past PER_INPUT_SECONDS."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"one input ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(counts: Counter, load: Callable[[], Any]) -> None:
    """Run one input and count it; anything but success or a TensorweaveError fails the test."""
    counts["inputs"] += 1
    try:
        with time_limit(PER_INPUT_SECONDS):
            load()
        counts["accepted"] += 1
    except TensorweaveError as exc:
        assert str(exc).strip(), "a project error with an empty message"
        counts["refused"] += 1
    except Hang:
        counts["hangs"] += 1
        raise
    except BaseException:
        counts["outside the project's class"] += 1
        raise


def report(target: str, counts: Counter) -> None:
    if os.environ.get("TW_FUZZ_REPORT"):
        with open(os.environ["TW_FUZZ_REPORT"], "a") as f:
            f.write(json.dumps({"target": target, **counts}) + "\n")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], special: list[bytes] | None = None) -> bytes:
    """A seed with 1-6 edits: bit flips, cuts, inserted, deleted or duplicated runs, and (given `special`)
    one of those byte strings written in."""
    data = bytearray(draw(st.sampled_from(seeds)))
    kinds = ["flip", "flip", "cut", "insert", "delete", "duplicate"] + (["special"] if special else [])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(kinds))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "special" and special:
            data[pos:pos + draw(st.integers(0, 2))] = draw(st.sampled_from(special))
        elif kind == "duplicate":
            end = pos + draw(st.integers(1, 200))
            data[end:end] = data[pos:end]
    return bytes(data)
