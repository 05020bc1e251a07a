"""Fuzzing the compiled-model folder's settings.json: mutated bytes and mutated fields -> Settings or a
PipelineError (the project's error class) naming the file and field, nothing else.

Rule (issue 17): `read_settings` (what `load_compiled` and `tensorweave run DIR` read first) never raises
another exception or hangs, whatever a hand edit or a truncated write left in settings.json. Tiers and
reporting as in test_fuzz_onnx.py.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fuzzing import DEFAULT_EXAMPLES, SLOW_EXAMPLES, mutated, outcome, report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorweave.compiler.compiled import SETTINGS_FILE, read_settings
from tensorweave.compiler.options import TargetOptions
from tensorweave.configs import load_config


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
