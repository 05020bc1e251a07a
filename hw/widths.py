"""Widths of the hardware's counters and element addresses, derived from the ISA's field widths.

The instruction fields bound every counter: a loop counter runs below 2^loop_iter, a row counter
below 2^size, a padded tile side is y_pad_0 + y_size + y_pad_1. Reading them here keeps a change of
`isa/isa.yaml` from leaving a counter too narrow.
"""

from __future__ import annotations

from ..isa import ISA


def loop_counter_width(isa: ISA) -> int:
    """Bits of the GEMM/ALU loop counters (iter_out, iter_in)."""
    return isa.widths["loop_iter"]


def size_counter_width(isa: ISA) -> int:
    """Bits of a counter of rows (y_size) or elements in a row (x_size)."""
    return isa.widths["size"]


def tile_side_width(isa: ISA) -> int:
    """Bits of a padded tile side, pad_0 + size + pad_1 (one bit of margin over the exact need)."""
    return max(isa.widths["size"], isa.widths["pad"]) + 2


def element_address_width(isa: ISA) -> int:
    """Bits of a DRAM element address dram_base + y * x_stride as the DMA walks the rows."""
    return isa.widths["dram_addr"] + isa.widths["stride"]
