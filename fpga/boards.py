"""The boards the FPGA flow targets: part, resources, synthesis family, flow, and an Amaranth platform.

Resource counts are the device's totals from the vendor data sheets (Xilinx DS190 / DS891, Lattice
FPGA-DS-02012). Block RAM is counted in the family's native block: RAMB36 (36 Kbit) on Xilinx, EBR
(DP16KD, 18 Kbit) on ECP5. amaranth-boards 0.0.21 has no PYNQ-Z2 or Ultra96-V2, so their platforms
are written here; the ULX3S comes from amaranth-boards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.build import Attrs, Clock, Pins, Resource
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import ButtonResources, LEDResources, SwitchResources

from ..errors import TensorweaveError


class BoardError(TensorweaveError):
    """An unknown board, or a design that does not fit one."""


@dataclass(frozen=True)
class Resources:
    """Device totals (or a design's use) of the four resources the fit table compares."""

    lut: int
    ff: int
    dsp: int
    bram: int

    def as_dict(self) -> dict[str, int]:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}


RESOURCE_NAMES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM"}


@dataclass(frozen=True)
class Board:
    """One target board. `family` is the yosys synthesis family (`xc7`, `xcup`, `ecp5`)."""

    name: str
    title: str
    vendor: str                 # "xilinx" or "lattice"
    family: str
    part: str
    resources: Resources
    bram_unit: str              # what one `bram` counts
    dsp_unit: str
    hard_cpu: str | None        # "zynq7", "zynqmp" or None
    dram_bus_width: int         # the width of the port the accelerator's DRAM master reaches
    clock_mhz: float            # the default fabric clock
    platform: Callable[[], object]
    pnr_args: tuple[str, ...] = ()   # nextpnr device arguments (open flow only)

    @property
    def flow(self) -> str:
        """`open` (yosys + nextpnr + ecppack to a bitstream) or `vivado` (a generated project)."""
        return "open" if self.vendor == "lattice" else "vivado"


class PYNQZ2Platform(XilinxPlatform):
    """TUL PYNQ-Z2 (xc7z020-clg400-1). Pins from the board's master XDC (PYNQ-Z2 v1.0)."""

    device = "xc7z020"
    package = "clg400"
    speed = "1"
    default_clk = "clk125"
    resources = [
        # 125 MHz from the Ethernet PHY; the accelerator itself is clocked from the PS (FCLK_CLK0).
        Resource("clk125", 0, Pins("H16", dir="i"), Clock(125e6), Attrs(IOSTANDARD="LVCMOS33")),
        *LEDResources(pins="R14 P14 N16 M14", attrs=Attrs(IOSTANDARD="LVCMOS33")),
        *ButtonResources(pins="D19 D20 L20 L19", attrs=Attrs(IOSTANDARD="LVCMOS33")),
        *SwitchResources(pins="M20 M19", attrs=Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = []


class Ultra96V2Platform(XilinxPlatform):
    """Avnet Ultra96-V2 (xczu3eg-sbva484-1-i). Its LEDs, buttons and clocks all belong to the PS (MIO),
    so the fabric has no board resources of its own: clocks, reset and interrupts come from the PS."""

    device = "xczu3eg"
    package = "sbva484"
    speed = "1-i"
    resources = []
    connectors = []


def _ulx3s_85f() -> object:
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


BOARDS: dict[str, Board] = {board.name: board for board in (
    Board("pynq-z2", "TUL PYNQ-Z2 (Zynq-7020)", "xilinx", "xc7", "xc7z020clg400-1",
          Resources(lut=53_200, ff=106_400, dsp=220, bram=140), "RAMB36", "DSP48E1", "zynq7", 64, 100.0,
          PYNQZ2Platform),
    Board("ultra96-v2", "Avnet Ultra96-V2 (Zynq UltraScale+ ZU3EG)", "xilinx", "xcup", "xczu3eg-sbva484-1-i",
          Resources(lut=70_560, ff=141_120, dsp=360, bram=216), "RAMB36", "DSP48E2", "zynqmp", 128, 100.0,
          Ultra96V2Platform),
    Board("ulx3s", "Radiona ULX3S (ECP5 LFE5U-85F)", "lattice", "ecp5", "LFE5U-85F-6BG381C",
          Resources(lut=83_640, ff=83_640, dsp=156, bram=208), "DP16KD (18 Kbit)", "MULT18X18D", None, 64, 25.0,
          _ulx3s_85f, ("--85k", "--package", "CABGA381", "--speed", "6")),
)}


def board_names() -> list[str]:
    return sorted(BOARDS)


def get_board(name: str) -> Board:
    """The board called `name`; an unknown name is a BoardError listing the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"unknown board '{name}': choose one of {', '.join(board_names())}") from None
