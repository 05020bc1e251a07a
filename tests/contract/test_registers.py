"""The register map: fixed offsets, and the Amaranth register file answers exactly as the map says."""

from tensorweave.configs import load_config
from tensorweave.contract.registers import (
    ADDR_WIDTH,
    DATA_WIDTH,
    OFFSETS,
    REGISTERS,
    UNIT_STATE_BITS,
    config_digest_value,
    pc_register,
    unit_state_bits,
    unit_states,
)
from tensorweave.contract.topology import UNITS


def test_register_offsets_are_the_contract():
    assert dict(OFFSETS) == {"CTRL": 0x00, "STATUS": 0x04, "INSN_COUNT": 0x08, "DRAM_BASE_LO": 0x0C,
                             "DRAM_BASE_HI": 0x10, "CYCLES_LO": 0x14, "CYCLES_HI": 0x18, "ERROR_CODE": 0x1C,
                             "ERROR_INSN": 0x20, "CONFIG_DIGEST": 0x24, "LOAD_PC": 0x28, "COMPUTE_PC": 0x2C,
                             "STORE_PC": 0x30, "UNIT_STATE": 0x34}
    assert all(r.offset % (DATA_WIDTH // 8) == 0 and r.offset < 1 << ADDR_WIDTH for r in REGISTERS)
    assert all(r.access in ("r", "w", "rw") and r.doc for r in REGISTERS)
    assert [pc_register(u) for u in UNITS] == ["LOAD_PC", "COMPUTE_PC", "STORE_PC"]


def test_unit_state_decoding():
    value = 0b100_010_001          # load busy, compute waiting for a token, store waiting for a command
    assert [unit_state_bits(value, u) for u in UNITS] == [1, 2, 4]
    assert unit_states(value) == {"load": ["busy"], "compute": ["waiting for a token"],
                                  "store": ["waiting for a command"]}
    assert unit_states(0) == {u: [] for u in UNITS}
    assert UNIT_STATE_BITS * len(UNITS) == 9


def test_the_amaranth_register_file_follows_the_map():
    """Through the AXI4-Lite port of `hw.top.Accelerator`: writable registers keep what is written,
    read-only ones ignore writes, write-only ones read 0; the idle accelerator reports its digest."""
    from amaranth.sim import Simulator
    from tensorweave.hw.simulate import axil_read, axil_write
    from tensorweave.hw.top import Accelerator, dram_base_alignment

    config = load_config("tiny")
    dut = Accelerator(config)
    pattern = 0x5A5A_0000 & ~(dram_base_alignment(config) - 1)
    got: dict[str, int] = {}

    async def bench(ctx):
        for r in REGISTERS:
            if r.name != "CTRL":                # writing CTRL would start a run
                await axil_write(ctx, dut.ctrl, r.offset, pattern)
        for r in REGISTERS:
            got[r.name] = await axil_read(ctx, dut.ctrl, r.offset)
        got["unmapped"] = await axil_read(ctx, dut.ctrl, 0xFC)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for r in REGISTERS:
        if r.access == "rw":
            assert got[r.name] == pattern, r.name
        elif r.access == "w":
            assert got[r.name] == 0, r.name
    assert got["CONFIG_DIGEST"] == config_digest_value(config)
    assert got["STATUS"] == 0 and got["ERROR_CODE"] == 0 and got["CYCLES_LO"] == 0
    assert got["UNIT_STATE"] == 0b100_100_100       # every unit idle, waiting for a command
    assert got["unmapped"] == 0
