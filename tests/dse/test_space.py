"""Sweep spaces: parsing, ranges, constraints, point selection, and one test per invalid-space message."""

import copy

import pytest
from tensorweave.dse.space import SweepError, load_space, parse_space, point_key

SPACE = {
    "name": "t",
    "base": "vta-default",
    "parameters": {"block_in": [8, 16, 32], "block_out": [8, 16, 32], "bus_width": {"range": [64, 256], "scale": "pow2"}},
    "constraints": ["block_in * block_out <= 256"],
    "workloads": [{"matmul": "mm", "m": 16, "k": 64, "n": 64}],
    "metrics": ["cycles", "latency_ms", "lut"],
    "search": {"method": "grid"},
}


def space(**changes):
    data = copy.deepcopy(SPACE)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def test_grid_keeps_the_points_meeting_the_constraints():
    s = parse_space(space())
    assert s.parameters["bus_width"] == (64, 128, 256)
    points = list(s.points())
    # Block pairs with product <= 256: (8,8) (8,16) (8,32) (16,8) (16,16) (32,8). With vta-default's
    # buffer bytes, narrower blocks mean deeper buffers and wider index fields: the GEMM format then
    # overflows the 128-bit word for all but (8,32) and (16,16) (e.g. 16x8: 134 bits), so those drop out.
    pairs = [(p["block_in"], p["block_out"]) for p in points]
    assert pairs == [(8, 32)] * 3 + [(16, 16)] * 3
    assert [p["bus_width"] for p in points] == [64, 128, 256] * 2
    assert points == list(parse_space(space()).points())  # ordered


def test_step_range_and_derived_names_in_constraints():
    s = parse_space(space(parameters={"clock_mhz": {"range": [100, 200], "step": 50}, "block_in": [16, 32]},
                          constraints=["macs_per_cycle <= 256 and clock_mhz != 150"]))
    assert s.parameters["clock_mhz"] == (100, 150, 200)
    assert [(p["clock_mhz"], p["block_in"]) for p in s.points()] == [(100, 16), (200, 16)]


def test_random_search_is_seeded():
    big = {"block_in": [8, 16, 32], "block_out": [8, 16, 32], "bus_width": [64, 128, 256], "clock_mhz": [100, 150]}
    a = parse_space(space(parameters=big, constraints=[], search={"method": "random", "samples": 5, "seed": 3}))
    b = parse_space(space(parameters=big, constraints=[], search={"method": "random", "samples": 5, "seed": 3}))
    c = parse_space(space(parameters=big, constraints=[], search={"method": "random", "samples": 5, "seed": 4}))
    assert list(a.points()) == list(b.points()) != list(c.points())
    assert len(list(a.points())) == 5 and len({point_key(p) for p in a.points()}) == 5


def test_named_workload_expands_to_resnet18_layers():
    s = parse_space(space(workloads=["resnet18"]))
    assert [w.name for w in s.workloads] == [f"C{i}" for i in range(2, 12)]


def test_the_shipped_spaces_load():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    spaces = {p.stem: load_space(p) for p in root.glob("*.yaml")}
    assert "resnet18" in spaces and spaces["resnet18"].search.method == "nsga2"
    assert len(spaces["resnet18"].workloads) == 10


INVALID = [
    (space(colour="red"), r"unknown field\(s\) colour"),
    (space(name="a b"), r"field 'name' must be a non-empty name"),
    (space(base="no-such-preset"), r"field 'base': no config preset named 'no-such-preset'"),
    (space(parameters={}), r"field 'parameters' must map config fields"),
    (space(parameters={"block_size": [8]}), r"parameter 'block_size' is not a config field"),
    (space(parameters={"block_in": [12]}), r"parameter 'block_in': value 12 is not allowed .*power of two"),
    (space(parameters={"block_in": []}), r"parameter 'block_in' has an empty list"),
    (space(parameters={"block_in": [16, 16]}), r"parameter 'block_in' lists a value twice"),
    (space(parameters={"block_in": {"range": [32, 8]}}), r"parameter 'block_in': range must be \[lo, hi\]"),
    (space(parameters={"block_in": {"range": [8, 32], "scale": "log"}}), r"parameter 'block_in': scale must be 'pow2'"),
    (space(parameters={"clock_mhz": {"range": [100, 200], "step": 0}}), r"parameter 'clock_mhz': step must be"),
    (space(parameters={"block_in": "16"}), r"parameter 'block_in' must be a list of values"),
    (space(constraints=["block_inn * 2 <= 4"]), r"constraints\[0\]: constraint 'block_inn \* 2 <= 4': 'block_inn' is not a config field"),
    (space(constraints=["block_in <="]), r"constraints\[0\]: constraint 'block_in <=' is not a valid expression"),
    (space(constraints=["block_in.real > 1"]), r"constraints\[0\]: constraint 'block_in.real > 1': 'block_in.real' \(Attribute\) is outside the grammar"),
    (space(constraints=["pow(block_in, 2) > 1"]), r"'pow\(block_in, 2\)' calls something other than min\(\), max"),
    (space(constraints=["block_in > 64"]), r"no point of the space is a valid config meeting every constraint"),
    (space(metrics=["cycles", "power"]), r"metric 'power' is unknown"),
    (space(search={"method": "bayes"}), r"search field 'method' must be one of grid, random, nsga2"),
    (space(search={"method": "grid", "samples": 3}), r"search field\(s\) samples do not apply to method 'grid'"),
    (space(search={"method": "random"}), r"search field 'samples' must be an integer >= 1"),
    (space(search={"method": "nsga2", "trials": 4, "objectives": ["latency_ms", "dsp"]}),
     r"search objective 'dsp' is not one of the sweep's metrics"),
    (space(search={"method": "nsga2", "trials": 4, "objectives": ["latency_ms"]}),
     r"search field 'objectives' must list at least two metrics"),
    (space(search={"method": "nsga2", "trials": 4, "population": 1}), r"search field 'population' must be an integer >= 2"),
    (space(workloads=[]), r"'workloads' must be a non-empty list"),
    (space(programs="hls"), r"field 'programs' must be one of gemm, compiler"),
    (space(workloads=["vgg"]), r"workloads\[0\]: no workload named 'vgg'"),
    (space(workloads=[{"conv": "x", "height": 8, "width": 8, "in_channels": 16, "out_channels": 16}]),
     r"workloads\[0\]: conv layer 'x' is missing field 'kernel'"),
    (space(workloads=[{"matmul": "x", "m": 1, "k": 2, "n": 3, "groups": 2}]), r"matmul layer field 'groups' is unknown"),
    (space(workloads=[{"matmul": "x", "m": 0, "k": 2, "n": 3}]), r"matmul layer field 'm' must be a positive integer"),
    (space(workloads=[{"matmul": "x", "m": 1, "k": 2, "n": 3}, {"matmul": "x", "m": 1, "k": 2, "n": 3}]),
     r"layer name 'x' appears twice"),
]


@pytest.mark.parametrize("data,message", INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_space_is_rejected_naming_the_field(data, message):
    with pytest.raises(SweepError, match=message):
        parse_space(data)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        load_space(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SweepError, match="not valid YAML"):
        load_space(bad)
