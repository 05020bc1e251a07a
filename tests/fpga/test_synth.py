"""Synthesis estimates: multiplier mapping, resource counting, fit errors, and the real yosys flow
on the demo design (seconds) and on `tiny` (minutes: slow)."""

from __future__ import annotations

import json

import pytest
from tensorweave.fpga.boards import BoardError, get_board
from tensorweave.fpga.fit import estimate_path
from tensorweave.fpga.synth import (
    Multiplier,
    count_resources,
    estimate,
    fit_report,
    parse_multipliers,
    require_fit,
    split_multipliers,
)

DUMP = """
  attribute \\src "top.v:12"
  cell $mul \\tw_mul_0
    parameter \\A_SIGNED 1
    parameter \\A_WIDTH 8
    parameter \\B_SIGNED 1
    parameter \\B_WIDTH 8
    parameter \\Y_WIDTH 16
    connect \\A \\a
  end
  cell $mul \\tw_mul_1
    parameter \\A_SIGNED 0
    parameter \\A_WIDTH 32
    parameter \\B_SIGNED 0
    parameter \\B_WIDTH 16
    parameter \\Y_WIDTH 32
  end
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_parse_multipliers_and_dsp_blocks():
    small, wide = parse_multipliers(DUMP)
    assert small == Multiplier("tw_mul_0", 8, 8, True, True)
    assert wide == Multiplier("tw_mul_1", 32, 16, False, False)
    assert small.dsp_blocks("xc7") == 1 and small.dsp_blocks("ecp5") == 1
    # unsigned 32 x 16 needs 33 x 17 signed bits: 2 x 1 DSP48E1 (25 x 18), 2 x 1 MULT18X18D
    assert wide.dsp_blocks("xc7") == 2 and wide.dsp_blocks("ecp5") == 2


def test_an_array_too_big_for_the_dsps_is_split_between_dsps_and_luts():
    products = [Multiplier(f"p{i}", 8, 8, True, True) for i in range(256)]
    alu = [Multiplier(f"alu{i}", 32, 16, True, True) for i in range(2)]
    on_dsp, as_lut = split_multipliers(products + alu, get_board("pynq-z2"))
    # budget 0.9 * 220 = 198 blocks: both ALU multipliers (2 blocks each) first, then 194 products
    assert {m.name for m in alu} <= {m.name for m in on_dsp}
    assert len(on_dsp) == 196 and len(as_lut) == 62
    assert sum(m.dsp_blocks("xc7") for m in on_dsp) == 198
    on_dsp, as_lut = split_multipliers(products[:200], get_board("pynq-z2"))
    assert len(on_dsp) == 200 and not as_lut           # fits: everything stays on DSPs


def test_count_resources_weights_cells():
    cells = {"LUT2": 10, "LUT6": 5, "INV": 2, "RAM64M": 3, "CARRY4": 7, "FDRE": 40, "FDSE": 2, "DSP48E1": 4,
             "RAMB36E1": 3, "RAMB18E1": 3}
    assert count_resources(cells, "xc7") == {"lut": 29, "ff": 42, "dsp": 4, "bram": 5}
    assert count_resources({"LUT4": 100, "CCU2C": 10, "TRELLIS_FF": 50, "MULT18X18D": 2, "DP16KD": 9},
                           "ecp5") == {"lut": 120, "ff": 50, "dsp": 2, "bram": 9}


def test_a_design_that_does_not_fit_names_the_resource_and_the_excess():
    used = {"lut": 60_000, "ff": 20_000, "dsp": 256, "bram": 100}
    result = {"design": "vta-default", "board": "pynq-z2", "part": "xc7z020clg400-1", "resources": used,
              **fit_report(used, get_board("pynq-z2"))}
    assert not result["fits"] and result["over"] == {"lut": 6_800, "dsp": 36}
    with pytest.raises(BoardError, match=r"LUT 60,000 of 53,200 \(6,800 over, 112.8%\); DSP 256 of 220 \(36 over.*"
                                         r"try a smaller preset \(tiny\)"):
        require_fit(result, ["tiny"])


@pytest.mark.synthesis
def test_demo_estimate_on_three_families_and_the_cache(tmp_path, cache):
    pynq = estimate("demo", "pynq-z2", tmp_path / "pynq", progress=False)
    assert pynq["cached"] is False and pynq["fits"]
    # yosys 0.70 is pinned, so the counts are exact: 231 flip-flops, the one 16x16 product on a DSP48E1
    assert pynq["resources"]["ff"] == 231 and pynq["resources"]["dsp"] == 1 and pynq["resources"]["bram"] == 0
    assert 300 < pynq["resources"]["lut"] < 1000
    assert pynq["multipliers"] == {"total": 1, "on_dsp": 1, "as_lut": 0}
    assert (tmp_path / "pynq" / "synth.log").stat().st_size > 1000
    ecp5 = estimate("demo", "ulx3s", tmp_path / "ecp5", progress=False)
    assert ecp5["resources"]["ff"] == 231 and ecp5["resources"]["dsp"] == 1
    assert ecp5["cells"]["MULT18X18D"] == 1 and ecp5["cells"]["TRELLIS_FF"] == 231
    again = estimate("demo", "pynq-z2", tmp_path / "again", progress=False)
    assert again["cached"] is True and again["resources"] == pynq["resources"]
    assert (tmp_path / "again" / "synth.log").is_file()       # the cached logs come back


def test_unknown_board_lists_the_boards(tmp_path):
    with pytest.raises(BoardError, match="unknown board 'pynq-z1': choose one of pynq-z2, ultra96-v2, ulx3s"):
        estimate("demo", "pynq-z1", tmp_path)


@pytest.mark.slow
@pytest.mark.synthesis
def test_tiny_resynthesizes_to_its_stored_estimate(tmp_path, cache):
    stored_path = estimate_path("tiny", "pynq-z2")
    if not stored_path.is_file():
        pytest.skip("no stored estimate for tiny on pynq-z2 (run tensorweave fpga fit-table --refresh)")
    stored = json.loads(stored_path.read_text())
    fresh = estimate("tiny", "pynq-z2", tmp_path, progress=False)
    assert fresh["fits"] and fresh["resources"]["dsp"] > 0 and fresh["resources"]["lut"] > 1000
    if fresh["verilog_sha256"] == stored["verilog_sha256"] and fresh["yosys"] == stored["yosys"]:
        assert fresh["resources"] == stored["resources"]
    else:
        # The RTL moved on since the table was written: the stored numbers must still be close
        # (refresh with `tensorweave fpga fit-table --refresh` when they drift).
        for key in ("lut", "ff", "dsp"):
            assert abs(fresh["resources"][key] - stored["resources"][key]) <= 0.15 * stored["resources"][key] + 8, key
