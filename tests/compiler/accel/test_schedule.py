"""Tiling choice: fits the scratchpads, is measured, cached per (config, shape), survives a corrupted cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv, conv2d_int, requantize
from tensorweave.compiler.accel.lower import FIXED_CONSTS, Tiling, sram_needs
from tensorweave.compiler.accel.schedule import CACHE_FILE, CACHE_VERSION, analytical, candidates
from tensorweave.configs import load_config

SPEC = ConvSpec(1, 8, 9, 9, 12, (3, 3), pads=(1, 1, 1, 1))


def _compile(config, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, SPEC.weight_shape)
    return compile_conv(config, SPEC, w, None, Requant(0.04, (0.006,), 0.11)), w


def test_every_candidate_fits_and_the_choice_is_the_fastest_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    config = load_config("tiny")
    kernel, _ = _compile(config)
    p = kernel.problem
    found = candidates(config, p, fixed=True)
    assert kernel.tiling in found
    for t in found:
        for need, have in sram_needs(config, p, t, FIXED_CONSTS).values():
            assert need <= have
    # The untiled layer does not fit tiny's scratchpads, so tiling was needed.
    whole = Tiling(p.out_height, p.out_width, p.kb, p.cb)
    assert whole not in found
    # Double buffering: the analytical model overlaps loads with compute, so it is below their sum.
    est = analytical(config, p, kernel.tiling, 13)
    assert est.cycles < est.compute + est.load + est.store


def test_double_buffering_overlaps_units_and_balances_tokens(tmp_path, monkeypatch):
    """Loads of step t+1 run while step t computes, and stores while the next tile computes: in the
    cycle model the run is shorter than the units' busy time added up; every token is consumed."""
    from tensorweave.sim.cycle import estimate_cycles
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    kernel, _ = _compile(load_config("tiny"))
    report = estimate_cycles(kernel.program)
    busy = sum(report.busy.get(unit, 0) for unit in ("load", "compute", "store"))
    assert report.cycles < busy
    from tensorweave.sim.functional import run_functional
    result = run_functional(kernel.program, {"x": kernel.pack_input(np.zeros((1, 8, 9, 9), dtype=np.int64))})
    assert result.stats.tokens_left == {}


def test_cache_hit_and_corrupted_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    config = load_config("tiny")
    first, w = _compile(config)
    assert not first.cached
    cache = tmp_path / f"schedules-v{CACHE_VERSION}" / CACHE_FILE
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == 1 and next(iter(entries)).startswith(config.digest)
    second, _ = _compile(config)
    assert second.cached and second.tiling == first.tiling
    cache.write_text("{ not json")
    with pytest.warns(UserWarning, match="unreadable.*rebuilding"):
        third, _ = _compile(config)
    assert not third.cached and third.tiling == first.tiling
    assert json.loads(cache.read_text())["version"] == CACHE_VERSION
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 9, 9))
    y, _ = third.run(x)
    assert np.array_equal(y, requantize(conv2d_int(x, w, SPEC), third.plan))


def test_explain_lists_tiles_mapping_counts_and_cycles(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    kernel, _ = _compile(load_config("vta-default"))
    text = kernel.explain()
    for needle in ("tensorize conv2d onto vta-default.gemm", "i<16 reduce> <- c(8)", "tiling:", "instructions:",
                   "gemm", "alu.mul", "estimated cycles", "utilization", "requantization: fixed-point"):
        assert needle in text, needle
    counts = kernel.instruction_counts()
    assert counts["unit:load"] + counts["unit:compute"] + counts["unit:store"] == len(kernel.program.insns)
