"""The AXI4 / AXI4-Lite signatures the FPGA flow wraps, as the hardware contract names them.

`tensorweave.hw.axi` defines them for the accelerator; until that module exists (the FPGA flow is
developed alongside it) the same members are declared here, so wrappers and the demo design see
exactly the contract's port names and directions (as seen by the master).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

AXI4_LITE_MEMBERS = ("awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
                     "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready")
AXI4_MEMBERS = ("araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rdata", "rresp", "rlast", "rvalid",
                "rready", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata", "wstrb", "wlast",
                "wvalid", "wready", "bresp", "bvalid", "bready")


def _local_axi4(addr_width: int, data_width: int) -> wiring.Signature:
    strb = data_width // 8
    return wiring.Signature({
        "araddr": Out(addr_width), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2), "arvalid": Out(1),
        "arready": In(1), "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
        "rready": Out(1),
        "awaddr": Out(addr_width), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2), "awvalid": Out(1),
        "awready": In(1), "wdata": Out(data_width), "wstrb": Out(strb), "wlast": Out(1), "wvalid": Out(1),
        "wready": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    })


def _local_axi4_lite(addr_width: int, data_width: int) -> wiring.Signature:
    return wiring.Signature({
        "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def axi4_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """An AXI4 master signature (no IDs, cache, prot or lock), from hw.axi when present."""
    try:
        from ..hw.axi import AXI4Signature
    except ImportError:
        return _local_axi4(addr_width, data_width)
    return AXI4Signature(addr_width=addr_width, data_width=data_width)


def axi4_lite_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """An AXI4-Lite master signature, from hw.axi when present."""
    try:
        from ..hw.axi import AXI4LiteSignature
    except ImportError:
        return _local_axi4_lite(addr_width, data_width)
    return AXI4LiteSignature(addr_width=addr_width, data_width=data_width)
