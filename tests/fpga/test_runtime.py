"""The board driver, run against the RTL (Amaranth simulation of Accelerator(tiny)) and fake buses."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.contract.registers import OFFSETS
from tensorweave.fpga.runtime import (
    BoardDevice,
    BumpAllocator,
    DeviceError,
    PynqBus,
    UARTBus,
    config_digest_value,
)
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.functional import SimError
from tensorweave.sim.programs import blocked_gemm


@pytest.fixture(scope="module")
def tiny():
    return load_config("tiny")


@pytest.fixture(scope="module")
def device(tiny):
    from tensorweave.fpga.runtime import SimulatedBus
    return BoardDevice(SimulatedBus(tiny, dram_bytes=1 << 16), tiny, timeout_s=120)


def test_driver_runs_a_gemm_on_the_rtl_bit_exactly(device, tiny):
    program = assemble(blocked_gemm(tiny, 4, 8, 8, shift=3), tiny)
    rng = np.random.default_rng(7)
    inputs = {t.name: rng.integers(-128, 128, size=t.shape, dtype=np.int64).astype(t.dtype) for t in program.inputs}
    expected = run_functional(program, inputs)
    got = device.run(program, inputs)
    assert set(got.outputs) == set(expected.outputs)
    for name, value in expected.outputs.items():
        np.testing.assert_array_equal(got.outputs[name], value)
    assert got.registers["STATUS"] == 0b010
    assert 10 < got.cycles < 20_000
    # A second run on the same device reuses the DRAM region and gives the same answer.
    again = device.run(program, inputs)
    for name, value in expected.outputs.items():
        np.testing.assert_array_equal(again.outputs[name], value)


def test_driver_reports_a_hardware_error_with_the_instruction(device, tiny):
    """An illegal opcode in instruction 3: the functional simulator refuses it, the RTL flags it there."""
    from dataclasses import replace

    program = assemble(blocked_gemm(tiny, 4, 8, 8, shift=3), tiny)
    insns = list(program.insns)
    insns[3] = insns[3] | 0b111          # opcode 7 does not exist
    bad = replace(program, insns=tuple(insns))
    with pytest.raises(SimError, match="3"):
        run_functional(bad)
    with pytest.raises(DeviceError, match=r"error 1 \(illegal opcode\) at instruction 3"):
        device.run(bad)
    assert device.registers()["STATUS"] & 0b101 == 0b100   # stopped cleanly: error set, not busy


def test_wrong_bitstream_is_refused(tiny):
    class Registers:
        bus_bytes = 8

        def read32(self, offset):
            return 0x12345678 if offset == OFFSETS["CONFIG_DIGEST"] else 0

    with pytest.raises(DeviceError, match="CONFIG_DIGEST 0x12345678.*build and load the bitstream for 'tiny'"):
        BoardDevice(Registers(), tiny)
    assert config_digest_value(tiny) == int(tiny.digest[:8], 16)


def test_bump_allocator_aligns_and_refuses_overflow():
    alloc = BumpAllocator(0x1000, 0x1200, 64)
    a = alloc.alloc(10)
    b = alloc.alloc(100)
    assert (a, b) == (0x1000, 0x1040)
    with pytest.raises(DeviceError, match="does not fit"):
        alloc.alloc(0x200)
    alloc.free(a)
    alloc.free(b)
    assert alloc.alloc(0x200) == 0x1000


def test_pynq_bus_without_pynq_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(DeviceError, match="pynq package is not installed"):
        PynqBus()


def test_pynq_bus_uses_mmio_and_allocate(monkeypatch):
    """The PYNQ calls, against a stand-in module recording them (the real board is not here)."""
    calls = []

    class Buffer(np.ndarray):
        physical_address = 0x1800_0000

        def flush(self):
            calls.append("flush")

        def invalidate(self):
            calls.append("invalidate")

        def freebuffer(self):
            calls.append("free")

    class MMIO:
        def __init__(self, base, length):
            calls.append(("mmio", base, length))
            self.regs = {}

        def read(self, offset):
            return self.regs.get(offset, 0)

        def write(self, offset, value):
            self.regs[offset] = value

    fake = types.SimpleNamespace(MMIO=MMIO, Overlay=lambda path: calls.append(("overlay", path)),
                                 allocate=lambda shape, dtype: np.zeros(shape, dtype).view(Buffer))
    monkeypatch.setitem(sys.modules, "pynq", fake)
    bus = PynqBus("tensorweave.bit")
    bus.write32(0x0C, 0x1234)
    assert bus.read32(0x0C) == 0x1234
    address = bus.dram_alloc(16)
    bus.dram_write(address, bytes(range(16)))
    assert bus.dram_read(address, 16) == bytes(range(16))
    bus.dram_free(address)
    assert calls == [("overlay", "tensorweave.bit"), ("mmio", 0x43C0_0000, 0x1000), "flush", "invalidate", "free"]


def test_uart_bus_frames():
    class Port:
        def __init__(self):
            self.sent = bytearray()
            self.replies = bytearray()

        def write(self, data):
            self.sent += data
            if data[:1] in (b"w", b"W"):
                self.replies += b"k"
            else:
                self.replies += (0xA1B2C3D4).to_bytes(4, "little")

        def read(self, count):
            out, self.replies = bytes(self.replies[:count]), self.replies[count:]
            return out

    port = Port()
    bus = UARTBus(port, dram_bytes=4096)
    bus.write32(0x08, 5)
    assert bus.read32(0x04) == 0xA1B2C3D4
    bus.dram_write(0x40, b"\x01\x02\x03\x04\x05")
    assert bus.dram_read(0x40, 6) == bytes.fromhex("d4c3b2a1d4c3")
    assert bytes(port.sent) == (b"w\x08\x05\x00\x00\x00" + b"r\x04" + b"W\x40\x00\x00\x00\x01\x02\x03\x04"
                                + b"W\x44\x00\x00\x00\x05\x00\x00\x00" + b"R\x40\x00\x00\x00" + b"R\x44\x00\x00\x00")
