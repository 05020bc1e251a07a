"""Running compiled Programs on the accelerator through its register interface and DMA buffers.

The driver (`BoardDevice`) speaks only to a small `Bus`: 32-bit register reads and writes and a
physically contiguous DRAM region it can allocate, fill and read back. The same driver runs on

- a PYNQ board (`PynqBus`: `pynq.MMIO` for the registers, `pynq.allocate` for DMA buffers; pynq is
  imported only when this bus is made),
- an ECP5 board (`UARTBus`: the UART bridge frames of `fpga.uart`, DRAM = the on-chip model),
- the RTL in simulation (`SimulatedBus`: the Amaranth model of `hw.top.Accelerator` with an AXI
  DRAM model, stepped on each register access), which is how the driver is tested here.

`BoardEngine` puts the driver behind the run interface of `contract/engine.py`; the registered
"board" engine (`simulated_board`) runs it on `SimulatedBus`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..configs import AccelConfig
from ..contract import error_codes
from ..contract.engine import RunResult, Stats
from ..contract.registers import (
    CTRL_START,
    OFFSETS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR,
    config_digest_value,
    pc_register,
    unit_states,
)
from ..contract.topology import UNITS
from ..errors import TensorweaveError
from ..isa import Program, build_isa
from ..isa.asm import disassemble_insn


class DeviceError(TensorweaveError, RuntimeError):
    """The board or its bus cannot run the program (wrong bitstream, timeout, hardware error)."""


class Bus(Protocol):
    """What the driver needs from a board: registers and a DMA-reachable DRAM region."""

    bus_bytes: int

    def read32(self, offset: int) -> int: ...
    def write32(self, offset: int, value: int) -> None: ...
    def dram_alloc(self, size: int) -> int: ...          # physical byte address, bus-word aligned
    def dram_write(self, address: int, data: bytes) -> None: ...
    def dram_read(self, address: int, size: int) -> bytes: ...
    def dram_free(self, address: int) -> None: ...


@dataclass
class BoardRun:
    outputs: dict[str, np.ndarray]
    cycles: int
    dram: bytes
    registers: dict[str, int] = field(default_factory=dict)


class BoardDevice:
    """Runs Programs of one config on a board reached through `bus` (see the module docstring)."""

    def __init__(self, bus: Bus, config: AccelConfig, timeout_s: float = 10.0):
        self.bus, self.config, self.timeout_s = bus, config, timeout_s
        found = bus.read32(OFFSETS["CONFIG_DIGEST"])
        if found != config_digest_value(config):
            raise DeviceError(f"the loaded bitstream reports CONFIG_DIGEST {found:#010x}, but config '{config.name}' "
                              f"needs {config_digest_value(config):#010x}: build and load the bitstream for "
                              f"'{config.name}' (tensorweave fpga project/build --config {config.name})")

    def registers(self) -> dict[str, int]:
        return {name: self.bus.read32(offset) for name, offset in OFFSETS.items()}

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> BoardRun:
        """Run `program`; outputs read back from DRAM. A hardware error is a DeviceError naming the insn."""
        if program.config != self.config:
            raise DeviceError(f"the program was built for config '{program.config.name}', the device runs "
                              f"'{self.config.name}'")
        image = bytes(program.dram_image(inputs))
        base = self.bus.dram_alloc(len(image))
        try:
            self.bus.dram_write(base, image)
            status = self._start_and_wait(base, len(program.insns))
            registers = self.registers()
            if status & STATUS_ERROR:
                raise DeviceError(self._describe_error(program, registers))
            # Read back only the outputs (the slow part on a UART); the rest is the image as written.
            dram = bytearray(image)
            for tensor in program.outputs:
                dram[tensor.offset:tensor.offset + tensor.nbytes] = self.bus.dram_read(base + tensor.offset,
                                                                                      tensor.nbytes)
        finally:
            self.bus.dram_free(base)
        outputs = {t.name: program.read_tensor(dram, t.name) for t in program.outputs}
        cycles = registers["CYCLES_LO"] | registers["CYCLES_HI"] << 32
        return BoardRun(outputs, cycles, bytes(dram), registers)

    def _start_and_wait(self, base: int, insn_count: int) -> int:
        bus = self.bus
        if bus.read32(OFFSETS["STATUS"]) & STATUS_BUSY:
            raise DeviceError("the accelerator is still busy with an earlier run (STATUS.busy is set)")
        bus.write32(OFFSETS["INSN_COUNT"], insn_count)
        bus.write32(OFFSETS["DRAM_BASE_LO"], base & 0xFFFF_FFFF)
        bus.write32(OFFSETS["DRAM_BASE_HI"], base >> 32)
        bus.write32(OFFSETS["CTRL"], CTRL_START)
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = bus.read32(OFFSETS["STATUS"])
            if status & (STATUS_DONE | STATUS_ERROR) and not status & STATUS_BUSY:
                return status
            if time.monotonic() > deadline:
                state = self.registers()
                raise DeviceError(f"the accelerator did not finish within {self.timeout_s:g} s: "
                                  f"{describe_units(state)}")

    def _describe_error(self, program: Program, registers: dict[str, int]) -> str:
        code, index = registers["ERROR_CODE"], registers["ERROR_INSN"]
        try:
            isa = build_isa(program.config)
            shown = f" ({disassemble_insn(isa, isa.decode(program.insns[index]))})"
        except (TensorweaveError, IndexError):
            shown = f" (word {program.insns[index]:#x})" if index < len(program.insns) else ""
        return (f"the accelerator stopped with error {code} ({error_codes.message(code)}) at instruction "
                f"{index}{shown}")


def describe_units(registers: dict[str, int]) -> str:
    """Each unit's PC and state from LOAD_PC/COMPUTE_PC/STORE_PC and UNIT_STATE."""
    states = unit_states(registers["UNIT_STATE"])
    return "; ".join(f"{unit} at instruction {registers[pc_register(unit)]} ({', '.join(states[unit] or ['idle'])})"
                     for unit in UNITS)


class BumpAllocator:
    """Bus-word aligned allocations in [start, end) of a DRAM region, freed all at once when empty."""

    def __init__(self, start: int, end: int, align: int):
        self.start, self.end, self.align = start, end, align
        self.next = start
        self.live: set[int] = set()

    def alloc(self, size: int) -> int:
        address = -(-self.next // self.align) * self.align
        if address + size > self.end:
            raise DeviceError(f"the program's DRAM image ({size} bytes) does not fit the {self.end - self.start}-byte "
                              "DRAM region of this board")
        self.next = address + size
        self.live.add(address)
        return address

    def free(self, address: int) -> None:
        self.live.discard(address)
        if not self.live:
            self.next = self.start


class SimulatedBus:
    """The bus into the RTL: `hw.top.Accelerator(config)` in the Amaranth simulator with an AXI DRAM model.

    Each register access pushes a request to a testbench that performs the AXI4-Lite transaction, and
    steps the simulator until it answers; the DRAM model (`hw.simulate.AxiDram`) is served every cycle,
    so the accelerator runs while the driver polls. DRAM reads and writes go straight to the model's bytes,
    as a CPU writes a DMA buffer.
    """

    def __init__(self, config: AccelConfig, dram_bytes: int = 1 << 20, read_latency: int = 1,
                 max_cycles_per_access: int = 10_000):
        from amaranth.sim import Simulator

        from ..hw.simulate import AxiDram, axil_read, axil_write, serve_dram
        from ..hw.top import Accelerator

        self.bus_bytes = config.bus_bytes
        self.dut = Accelerator(config)
        self.model = AxiDram(dram_bytes, config.bus_bytes, read_latency)
        self.allocator = BumpAllocator(0x1000, dram_bytes, max(64, config.bus_bytes))
        self.cycles = 0
        self._requests: deque[tuple[str, int, int]] = deque()
        self._responses: deque[int] = deque()
        self._max_steps = 2 * max_cycles_per_access
        dut, model = self.dut, self.model

        async def dram_server(ctx) -> None:
            while True:
                await serve_dram(ctx, dut.dram, model)
                self.cycles += 1

        async def registers(ctx) -> None:
            while True:
                if not self._requests:
                    await ctx.tick()
                    continue
                kind, offset, value = self._requests.popleft()
                if kind == "w":
                    await axil_write(ctx, dut.ctrl, offset, value)
                    self._responses.append(0)
                else:
                    self._responses.append(await axil_read(ctx, dut.ctrl, offset))

        self.sim = Simulator(dut)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(dram_server, background=True)
        self.sim.add_testbench(registers, background=True)

    def _transact(self, kind: str, offset: int, value: int = 0) -> int:
        self._requests.append((kind, offset, value))
        for _ in range(self._max_steps):
            if self._responses:
                return self._responses.popleft()
            self.sim.advance()
        raise DeviceError(f"register {'write' if kind == 'w' else 'read'} at {offset:#x} got no AXI4-Lite response")

    def read32(self, offset: int) -> int:
        return self._transact("r", offset)

    def write32(self, offset: int, value: int) -> None:
        self._transact("w", offset, value)

    def dram_alloc(self, size: int) -> int:
        return self.allocator.alloc(size)

    def dram_free(self, address: int) -> None:
        self.allocator.free(address)

    def dram_write(self, address: int, data: bytes) -> None:
        self.model.mem[address:address + len(data)] = data

    def dram_read(self, address: int, size: int) -> bytes:
        return bytes(self.model.mem[address:address + size])


class PynqBus:
    """A PYNQ board with the overlay of `tensorweave fpga project` loaded (registers at `register_base`)."""

    def __init__(self, bitfile: str | None = None, register_base: int = 0x43C0_0000, bus_bytes: int = 8):
        try:
            import pynq
        except ImportError:
            raise DeviceError("the pynq package is not installed: run this on a PYNQ board image "
                              "(pynq 3.x), or use the simulated bus") from None
        self._pynq = pynq
        self.overlay: Any = pynq.Overlay(bitfile) if bitfile else None
        self.mmio = pynq.MMIO(register_base, 0x1000)
        self.bus_bytes = bus_bytes
        self._buffers: dict[int, Any] = {}

    def read32(self, offset: int) -> int:
        return int(self.mmio.read(offset)) & 0xFFFF_FFFF

    def write32(self, offset: int, value: int) -> None:
        self.mmio.write(offset, value & 0xFFFF_FFFF)

    def dram_alloc(self, size: int) -> int:
        buffer = self._pynq.allocate(shape=(max(size, 1),), dtype=np.uint8)
        address = int(buffer.physical_address)
        self._buffers[address] = buffer
        return address

    def dram_write(self, address: int, data: bytes) -> None:
        buffer = self._buffers[address]
        buffer[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        buffer.flush()

    def dram_read(self, address: int, size: int) -> bytes:
        buffer = self._buffers[address]
        buffer.invalidate()
        return bytes(np.asarray(buffer[:size]))

    def dram_free(self, address: int) -> None:
        buffer = self._buffers.pop(address, None)
        if buffer is not None:
            buffer.freebuffer()


class UARTBus:
    """An ECP5 board running the UART SoC (`fpga.soc`): `port` is a pyserial-like object (read/write)."""

    def __init__(self, port: Any, dram_bytes: int, bus_bytes: int = 8):
        self.port, self.bus_bytes = port, bus_bytes
        self.allocator = BumpAllocator(0, dram_bytes, max(64, bus_bytes))

    def _answer(self, count: int) -> bytes:
        data = self.port.read(count)
        if len(data) != count:
            raise DeviceError(f"the UART bridge answered {len(data)} of {count} bytes: is the bitstream loaded?")
        return bytes(data)

    def read32(self, offset: int) -> int:
        self.port.write(b"r" + bytes([offset]))
        return int.from_bytes(self._answer(4), "little")

    def write32(self, offset: int, value: int) -> None:
        self.port.write(b"w" + bytes([offset]) + (value & 0xFFFF_FFFF).to_bytes(4, "little"))
        if self._answer(1) != b"k":
            raise DeviceError("the UART bridge did not acknowledge a register write")

    def dram_alloc(self, size: int) -> int:
        return self.allocator.alloc(size)

    def dram_free(self, address: int) -> None:
        self.allocator.free(address)

    def dram_write(self, address: int, data: bytes) -> None:
        padded = data + bytes(-len(data) % 4)
        for i in range(0, len(padded), 4):
            self.port.write(b"W" + (address + i).to_bytes(4, "little") + padded[i:i + 4])
            if self._answer(1) != b"k":
                raise DeviceError(f"the UART bridge did not acknowledge the DRAM write at {address + i:#x}")

    def dram_read(self, address: int, size: int) -> bytes:
        out = bytearray()
        for i in range(0, size, 4):
            self.port.write(b"R" + (address + i).to_bytes(4, "little"))
            out += self._answer(4)
        return bytes(out[:size])


class BoardEngine:
    """`BoardDevice` as an engine of `contract/engine.py` ("board"): one device per config, on `bus_for(config)`.

    `run` returns the outputs and the CYCLES register; `stats` stays empty, `busy` None, and `dram` is
    the image as written with the outputs read back (the driver reads nothing else). Errors are
    `DeviceError`s naming the instruction. `BoardEngine.on(bus, config)` wraps one board already open.
    """

    name = "board"

    def __init__(self, bus_for: Callable[[AccelConfig], Bus], timeout_s: float = 10.0):
        self.bus_for, self.timeout_s = bus_for, timeout_s
        self.devices: dict[AccelConfig, BoardDevice] = {}

    @classmethod
    def on(cls, bus: Bus, config: AccelConfig, timeout_s: float = 10.0) -> BoardEngine:
        def only(wanted: AccelConfig) -> Bus:
            raise DeviceError(f"this board runs config '{config.name}', not '{wanted.name}'")

        engine = cls(only, timeout_s)
        engine.devices[config] = BoardDevice(bus, config, timeout_s)
        return engine

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        device = self.devices.get(program.config)
        if device is None:
            device = self.devices[program.config] = BoardDevice(self.bus_for(program.config), program.config,
                                                                self.timeout_s)
        run = device.run(program, inputs)
        return RunResult(run.outputs, Stats(), bytearray(run.dram), cycles=run.cycles, engine=self.name)


def simulated_board() -> BoardEngine:
    """The registered "board" engine: the driver on `SimulatedBus` (the Amaranth RTL), so it runs without a board.

    Its DRAM model has the C++ harness's read timing (`read_latency=0`), so CYCLES is the harness's; the
    wall-clock timeout is long, as the simulated accelerator runs a few thousand cycles per second."""
    return BoardEngine(lambda config: SimulatedBus(config, read_latency=0), timeout_s=600.0)
