"""Out-of-context multiplier synthesis (fpga/ooc.py) against the flat flow on a small design (seconds)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from tensorweave.fpga.boards import Resources, get_board
from tensorweave.fpga.design import TOP, DesignSource
from tensorweave.fpga.ooc import METHOD, MulKind, synth_script
from tensorweave.fpga.synth import count_resources, mul_cells, synthesize

# Five registered products of two kinds (4 x signed 8x8, 1 x unsigned 6x5), summed into one register.
VERILOG = f"""
module {TOP}(input clk, input signed [7:0] a0, a1, a2, a3, input signed [7:0] b0, b1, b2, b3,
             input [5:0] c, input [4:0] d, output reg signed [19:0] y, output reg [10:0] z);
  reg signed [15:0] p0, p1, p2, p3;
  always @(posedge clk) begin
    p0 <= a0 * b0; p1 <= a1 * b1; p2 <= a2 * b2; p3 <= a3 * b3;
    y <= p0 + p1 + p2 + p3;
    z <= c * d;
  end
endmodule
"""
S8 = MulKind(8, 8, True, True, 16)
U6 = MulKind(6, 5, False, False, 11)
# A Zynq-7020 with one DSP: the split keeps int(0.9 * 1) = 0 on DSPs, so all five go to LUTs.
ONE_DSP = dataclasses.replace(get_board("pynq-z2"), name="pynq-z2-1dsp",
                              resources=Resources(lut=53_200, ff=106_400, dsp=1, bram=140))


def _source(tmp_path):
    path = tmp_path / f"{TOP}.v"
    path.write_text(VERILOG)
    return DesignSource("ooc-test", path, hashlib.sha256(VERILOG.encode()).hexdigest(), 64, "ooc-test")


def test_kind_names_and_the_swap_script():
    assert S8.name == "tw_ooc_mul_s8_s8_y16" and U6.name == "tw_ooc_mul_u6_u5_y11"
    assert MulKind.from_params({"A_SIGNED": "1", "A_WIDTH": "8", "B_SIGNED": "1", "B_WIDTH": "8",
                                "Y_WIDTH": "16"}) == S8
    script = synth_script({"tw_mul_2": S8, "tw_mul_0": S8, "tw_mul_1": U6}, "synth_xilinx -top x")
    assert (f"setparam -type \\tw_ooc_mul_s8_s8_y16 -unset A_SIGNED -unset A_WIDTH -unset B_SIGNED -unset "
            f"B_WIDTH -unset Y_WIDTH {TOP}/tw_mul_0 {TOP}/tw_mul_2") in script
    assert script.count("setparam") == 2 and "input [4:0] B;" in U6.blackbox_verilog()


def test_unknown_method_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown synthesis method 'hier': choose one of flat, ooc"):
        synthesize(_source(tmp_path), ONE_DSP, tmp_path, progress=False, method="hier")


@pytest.mark.synthesis
def test_out_of_context_multipliers_match_the_flat_flow(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "ooc").mkdir()
    flat = synthesize(_source(tmp_path / "flat"), ONE_DSP, tmp_path / "flat", progress=False)
    assert flat["method"] == "flat"            # 5 LUT multipliers: far below OOC_MIN_LUT_MULTIPLIERS
    ooc = synthesize(_source(tmp_path / "ooc"), ONE_DSP, tmp_path / "ooc", progress=False, method="ooc")
    assert flat["multipliers"] == ooc["multipliers"] == {"total": 5, "on_dsp": 0, "as_lut": 5}
    assert ooc["method"] == METHOD and flat["resources"]["dsp"] == ooc["resources"]["dsp"] == 0
    kinds = ooc["ooc"]["kinds"]
    assert set(kinds) == {S8.name, U6.name}
    # The blackboxes stayed cells of the design, counted per instance from its stat.json.
    assert kinds[S8.name]["instances"] == kinds[S8.name]["swapped"] == 4
    assert kinds[U6.name]["instances"] == kinds[U6.name]["swapped"] == 1
    params = mul_cells((tmp_path / "ooc" / "multipliers.txt").read_text())
    assert sorted(MulKind.from_params(p) for p in params.values()) == [U6] + [S8] * 4
    # The total is the rest of the design plus each kind once per instance (4 x the int8 product).
    s8_lut, u6_lut = kinds[S8.name]["resources"]["lut"], kinds[U6.name]["resources"]["lut"]
    assert s8_lut > 30 and u6_lut > 10
    assert ooc["resources"]["lut"] == ooc["ooc"]["rest"]["lut"] + 4 * s8_lut + u6_lut
    # The registers (4 x 16 + 20 + 11 bits, less what yosys merges) are all outside the multipliers.
    assert ooc["resources"]["ff"] == flat["resources"]["ff"] == ooc["ooc"]["rest"]["ff"] > 80
    assert count_resources(ooc["cells"], "xc7") == ooc["resources"]
    # Within 10 % of the flat flow: one int8 product more or less (95 LUTs) is ~20 % off.
    assert abs(ooc["resources"]["lut"] - flat["resources"]["lut"]) <= 0.10 * flat["resources"]["lut"], (
        ooc["resources"], flat["resources"])


def test_the_fit_table_marks_out_of_context_rows_only():
    from tensorweave.configs import load_config
    from tensorweave.fpga.fit import OOC_MARK, is_ooc, render
    from tensorweave.fpga.synth import fit_report

    def entry(design, **extra):
        used = {"lut": 100, "ff": 50, "dsp": 2, "bram": 1}
        return {"design": design, "config_digest": load_config(design).digest, "board": "ulx3s",
                "part": get_board("ulx3s").part, "resources": used, **fit_report(used, get_board("ulx3s")),
                "yosys": "Yosys 0.70", "multipliers": {"total": 3, "on_dsp": 2, "as_lut": 1}, **extra}

    flat, stored, ooc = entry("tiny", method="flat"), entry("w4a8"), entry("vta-default", method=METHOD)
    assert not is_ooc(flat) and not is_ooc(stored) and is_ooc(ooc)   # stored flat estimates have no "method"
    assert OOC_MARK not in render([flat, stored])
    text = render([flat, stored, ooc])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[-3].endswith("| 2 / 1 |") and rows[-2].endswith(f"| 2 / 1 {OOC_MARK} |")
    assert f"\n{OOC_MARK} out of context: " in text and "LUT " in text.split(f"\n{OOC_MARK} out of context")[1]
