"""The constraint grammar (bounded arithmetic, nothing outside it) and points streamed from huge spaces."""

import csv
import itertools
import time
import tracemalloc
import types

import pytest
from tensorweave.configs import load_config
from tensorweave.dse.runner import run_sweep
from tensorweave.dse.space import SweepError, parse_constraint, parse_space

BASE = {"name": "g", "base": "vta-default", "parameters": {"block_in": [8, 16], "block_out": [16, 32]},
        "workloads": [{"matmul": "fc", "m": 4, "k": 256, "n": 64}], "metrics": ["cycles", "lut"]}
# 2000 clocks x 6 x 6 x 5 x 6 x 5 = 10.8 M combinations
HUGE = {**BASE, "name": "huge", "parameters": {
    "clock_mhz": {"range": [1, 2000]}, "block_in": {"range": [2, 64], "scale": "pow2"},
    "block_out": {"range": [2, 64], "scale": "pow2"}, "batch": {"range": [1, 16], "scale": "pow2"},
    "dep_queue_depth": {"range": [2, 64], "scale": "pow2"}, "cmd_queue_depth": {"range": [2, 32], "scale": "pow2"}}}


def test_power_bomb_is_refused_at_once_naming_the_constraint_and_part():
    start = time.perf_counter()
    with pytest.raises(SweepError, match=r"constraints\[0\]: constraint '9 \*\* 9 \*\* 9 \*\* 9 > block_in': "
                                         r"'9 \*\* 9 \*\* 9' would be larger than 2\^1024"):
        parse_space({**BASE, "constraints": ["9 ** 9 ** 9 ** 9 > block_in"]})
    # Bounded at every step, whatever the values: a product of big powers, a power of a field.
    with pytest.raises(SweepError, match=r"'2 \*\* 1000 \* 2 \*\* 1000' is larger than 2\^1024"):
        parse_space({**BASE, "constraints": ["2 ** 1000 * 2 ** 1000 > block_in"]})
    with pytest.raises(SweepError, match=r"'block_in \*\* 400' would be larger"):
        parse_space({**BASE, "constraints": ["block_in ** 400 > 1"]})
    assert time.perf_counter() - start < 10  # a hang guard (the bomb used to spin forever), not a speed test


@pytest.mark.parametrize("text, part", [
    ("__import__('os').system('true')", r"'__import__\('os'\).system\('true'\)' calls something other than"),
    ("().__class__", r"\(\)\.__class__' \(Attribute\)"),
    ("max(block_in, key=abs) > 1", r"calls something other than"),
    ("[block_in][0] > 1", r"\(Subscript\) is outside the grammar"),
    ("block_in if block_out else 1", r"\(IfExp\) is outside the grammar"),
    ("'a' < 'b'", r"''a'' is not a number"),
    ("block_in << 40", r"\(BinOp\) is outside the grammar"),
])
def test_anything_outside_the_grammar_is_refused_naming_the_part(text, part):
    with pytest.raises(SweepError, match=r"here: constraint .*" + part):
        parse_constraint(text, "here")


def test_valid_constraints_evaluate_as_python_would():
    config = load_config("vta-default")  # block_in 16, block_out 16, batch 1, bus_width 64 (see configs/)
    names = {n: getattr(config, n) for n in ("block_in", "block_out", "batch", "bus_width", "macs_per_cycle")}
    for text in ["block_in * block_out <= 256", "block_in // 3 == 5 and block_in % 3 == 1", "not block_in > 16",
                 "2 < block_in <= 16 < block_out * 2", "max(block_in, block_out) ** 2 == macs_per_cycle * 1",
                 "log2(block_in) == 4 or batch > 4", "-block_in + abs(-3) < 0", "block_in / 32 == 0.5",
                 "(block_in + 1) * (batch - 1) == 0", "min(block_in, bus_width, 9) == 9", "block_in ** -1 > 0"]:
        expected = bool(eval(text, {"min": min, "max": max, "abs": abs, "log2": __import__("math").log2}, names))
        assert parse_constraint(text, "c").holds(config) == expected, text
        assert expected or text in ("not block_in > 16",), text


def test_a_point_where_a_constraint_divides_by_zero_names_the_constraint_and_config():
    with pytest.raises(SweepError, match=r"constraint '100 // \(block_in - 8\) > 1' cannot be evaluated for config "
                                         r"'g-\w+' \(ZeroDivisionError"):
        parse_space({**BASE, "constraints": ["100 // (block_in - 8) > 1"]})  # the first point has block_in 8
    # The base config and the first point (16, 16) evaluate fine: only the point that divides by zero,
    # (8, 32), is at fault, when the stream reaches it.
    space = parse_space({**BASE, "constraints": ["100 // (block_out - 32) < 1"],
                         "parameters": {"block_in": [16, 8], "block_out": [16, 32]}})
    with pytest.raises(SweepError, match="ZeroDivisionError"):
        list(space.points())


def test_a_ten_million_point_space_streams_its_first_points_at_once():
    space = parse_space(HUGE)
    assert space.size == 10_800_000
    # Streamed, not built: the first points come from a generator, and taking them allocates kilobytes
    # (listing 10.8 M point dicts would take gigabytes). Memory, not time, so the check cannot flake.
    points = space.points()
    assert isinstance(points, types.GeneratorType)
    tracemalloc.start()
    first = list(itertools.islice(points, 20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000, peak
    assert len(first) == 20 and first[0]["clock_mhz"] == 1 and first[0] == space.point_at(0) | first[0]
    assert [p["cmd_queue_depth"] for p in first[:5]] == [2, 4, 8, 16, 32]  # grid order: last varies fastest
    assert space.point_at(space.size - 1) == {"clock_mhz": 2000, "block_in": 64, "block_out": 64, "batch": 16,
                                              "dep_queue_depth": 64, "cmd_queue_depth": 32}


def test_random_search_over_a_huge_space_draws_without_listing_it():
    space = parse_space({**HUGE, "search": {"method": "random", "samples": 4, "seed": 1}})
    start = time.perf_counter()
    drawn = list(space.points())
    assert time.perf_counter() - start < 20  # a hang guard: listing the space first would take hours
    assert len(drawn) == 4 and drawn == list(parse_space({**HUGE, "search": {"method": "random", "samples": 4,
                                                                                "seed": 1}}).points())
    assert all(space.check(p) is not None for p in drawn)


def test_max_points_applies_while_streaming_a_huge_space(tmp_path):
    start = time.perf_counter()
    result = run_sweep(parse_space(HUGE), tmp_path, workers=1, progress=False, max_points=2, report=False)
    assert time.perf_counter() - start < 120  # a hang guard: listing 10.8 M points first took hours
    assert (result.evaluated, result.complete, len(result.rows)) == (2, False, 2)
    with (tmp_path / "results.csv").open() as f:
        assert [int(r["clock_mhz"]) for r in csv.DictReader(f)] == [1, 1]
