"""The open ECP5 flow to a bitstream (yosys, nextpnr, ecppack) on the demo design inside the UART SoC."""

from __future__ import annotations

import pytest
from tensorweave.fpga.boards import BoardError
from tensorweave.fpga.build import build_bitstream


@pytest.mark.bitstream
def test_demo_soc_bitstream_on_ulx3s(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))
    result = build_bitstream("demo", "ulx3s", tmp_path / "out", progress=False)
    bitstream = (tmp_path / "out" / "soc.bit").read_bytes()
    assert b"\xff\xff\xbd\xb3" in bitstream[:2048]                 # the ECP5 preamble
    assert len(bitstream) > 100_000
    # the 64 KiB DRAM model is 32 DP16KD blocks (16 Kbit of data each); the demo's product is one MULT18X18D
    assert result["placed_cells"]["DP16KD"] == 32 and result["placed_cells"]["MULT18X18D"] == 1
    assert result["resources"]["bram"] == 32 and result["fits"]
    fmax = list(result["fmax_mhz"].values())
    assert len(fmax) == 1 and fmax[0] > result["clock_mhz"]     # closes timing at the ULX3S's 25 MHz
    for log in ("synth.log", "nextpnr.log", "report.json", "build.json"):
        assert (tmp_path / "out" / log).stat().st_size > 0
    again = build_bitstream("demo", "ulx3s", tmp_path / "again", progress=False)
    assert again["cached"] and again["fmax_mhz"] == result["fmax_mhz"]
    assert (tmp_path / "again" / "soc.bit").read_bytes() == bitstream


def test_bitstream_flow_refuses_a_zynq_board(tmp_path):
    with pytest.raises(BoardError, match="uses the Vivado flow: run `tensorweave fpga project --board pynq-z2`"):
        build_bitstream("demo", "pynq-z2", tmp_path)
