"""Fuzzing the compiled-model folder's settings.json: mutated bytes and mutated fields -> Settings or a
PipelineError (the project's error class) naming the file and field, nothing else.

Rule (issue 17): `read_settings` (what `load_compiled` and `tensorweave run DIR` read first) never raises
another exception or hangs, whatever a hand edit or a truncated write left in settings.json. Tiers and
reporting as in test_fuzz_onnx.py.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorweave.compiler.compiled import SETTINGS_FILE, read_settings
from tensorweave.compiler.options import TargetOptions
from tensorweave.configs import load_config
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


def report(target: str, counts: Counter) -> None:
    if os.environ.get("TW_FUZZ_REPORT"):
        with open(os.environ["TW_FUZZ_REPORT"], "a") as f:
            f.write(json.dumps({"target": target, **counts}) + "\n")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1-6 edits: bit flips, cuts, inserted, deleted or duplicated runs."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "flip", "cut", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            end = pos + draw(st.integers(1, 200))
            data[end:end] = data[pos:end]
    return bytes(data)


def _settings(target: str, config: str | None) -> dict[str, Any]:
    cfg = load_config(config) if config else None
    options = TargetOptions(target=target, config=cfg.name if cfg else None, config_digest=cfg.digest if cfg else None)
    return {"options": options.to_dict(), "input_shapes": {"x": [1, 4]}, "config": cfg.to_dict() if cfg else None}


SEED_DICTS = [_settings("cpu", None), _settings("accel", "tiny"), _settings("accel", "vta-default")]
SEEDS = [json.dumps(d, indent=1).encode() for d in SEED_DICTS]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)
COUNTS: Counter = Counter()
WORK = Path(tempfile.mkdtemp(prefix="tw-fuzz-compiled-"))


@st.composite
def edited(draw: st.DrawFn) -> bytes:
    """A seed with one field (at any depth) set to a random JSON value, or deleted."""
    data = json.loads(json.dumps(draw(st.sampled_from(SEED_DICTS))))
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()) or not isinstance(node[key], (dict, list)):
            if isinstance(node, dict) and draw(st.integers(0, 4)) == 0:
                del node[key]
            else:
                node[key] = draw(JSON)
            break
        node = node[key]
    return json.dumps(data).encode()


def load(raw: bytes, folder) -> None:
    (folder / SETTINGS_FILE).write_bytes(raw)
    read_settings(folder)


def test_seeds_load(tmp_path):
    for seed in SEEDS:
        load(seed, tmp_path)


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SEEDS) | edited())
def test_fuzz_settings(raw):
    outcome(COUNTS, lambda: load(raw, WORK))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SEEDS) | edited())
def test_fuzz_settings_slow(raw):
    outcome(COUNTS, lambda: load(raw, WORK))


def teardown_module() -> None:
    report("compiled folder (settings.json)", COUNTS)
