"""cocotb testbench for `tensorweave_top`: driver, monitor, reference model and scoreboard.

Pieces (each cycle-stepped by one clock loop, so they see the same edge):
- `AxiDram`: an AXI4 slave holding the DRAM image (INCR bursts, optional random ready/valid
  stalls that keep valid asserted until its handshake, protocol checks: burst type, 4 KiB).
- `AxiLiteMaster`: register reads and writes on the AXI4-Lite control port.
- `AcceleratorDriver`: places the program, writes DRAM_BASE / INSN_COUNT, starts the run.
- `CompletionMonitor`: waits for irq, reads STATUS, CYCLES, the error registers; its watchdog
  reads LOAD_PC / COMPUTE_PC / STORE_PC / UNIT_STATE when the run overstays its cycle budget.
- `Scoreboard`: compares the outputs with the reference model, `run_functional`.
`ProgramBench` wires them; `program_matches_reference` is the scenario. The job (program file,
result path, stall percent, cycle budget, whether to check) comes in environment variables set by
`cocotb_runner.run_cocotb`; the result file has the C++ harness's format.
"""

from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from ..contract.registers import CTRL_START, OFFSETS, STATUS_DONE, STATUS_ERROR
from ..isa import Program
from ..sim.functional import run_functional


class _Writer:
    """Writes a signal only when its value changes: each write is a costly call into the simulator."""

    def __init__(self, dut, prefix: str):
        self.dut, self.prefix = dut, prefix
        self.last: dict[str, int] = {}

    def __call__(self, name: str, value: int) -> None:
        if self.last.get(name) != value:
            self.last[name] = value
            getattr(self.dut, self.prefix + name).value = value


@dataclass
class _Burst:
    addr: int
    beats: int
    size: int
    done: int = 0

    def beat_addr(self) -> int:
        return self.addr if self.done == 0 else (self.addr & ~(self.size - 1)) + self.done * self.size


class AxiDram:
    """AXI4 slave memory: `image` at byte address `base`."""

    def __init__(self, dut, image: bytes, base: int, stall_percent: int = 0, seed: int = 1):
        self.dut, self.mem, self.base = dut, bytearray(image), base
        self.bus = len(dut.dram__rdata) // 8
        self.stall, self.rng = stall_percent, random.Random(seed)
        self.reads: deque[_Burst] = deque()
        self.writes: deque[_Burst] = deque()
        self.write_bursts_done = 0
        self.pending_b = 0
        self.r_hold = self.b_hold = False
        self.violations: list[str] = []
        self.put = _Writer(dut, "dram__")

    def _stalled(self) -> bool:
        return self.stall > 0 and self.rng.randrange(100) < self.stall

    def drive(self) -> None:
        put = self.put
        put("arready", int(not self._stalled()))
        put("awready", int(not self._stalled()))
        put("wready", int(not self._stalled()))
        rvalid = bool(self.reads) and (self.r_hold or not self._stalled())
        put("rvalid", int(rvalid))
        if rvalid:
            head = self.reads[0]
            lane0 = head.beat_addr() & ~(self.bus - 1)
            offset = lane0 - self.base
            if offset < 0 or offset >= len(self.mem):
                self.violations.append(f"read of 0x{lane0:x} outside the DRAM image")
            chunk = bytes(self.mem[max(0, offset):max(0, offset + self.bus)]).ljust(self.bus, b"\0")
            put("rdata", int.from_bytes(chunk, "little"))
            put("rlast", int(head.done + 1 == head.beats))
        else:
            put("rlast", 0)
        put("rresp", 0)
        put("bvalid", int(self.pending_b > 0 and (self.b_hold or not self._stalled())))
        put("bresp", 0)

    def sample(self) -> None:
        """Called in the read-only phase before the rising edge: apply this edge's handshakes."""
        d = self.dut
        ar = d.dram__arvalid.value and d.dram__arready.value
        r = d.dram__rvalid.value and d.dram__rready.value
        aw = d.dram__awvalid.value and d.dram__awready.value
        w = d.dram__wvalid.value and d.dram__wready.value
        b = d.dram__bvalid.value and d.dram__bready.value
        self.r_hold = bool(d.dram__rvalid.value) and not r
        self.b_hold = bool(d.dram__bvalid.value) and not b
        if ar:
            self.reads.append(self._burst("read", d.dram__araddr, d.dram__arlen, d.dram__arsize, d.dram__arburst))
        if r:
            head = self.reads[0]
            head.done += 1
            if head.done == head.beats:
                self.reads.popleft()
        if aw:
            self.writes.append(self._burst("write", d.dram__awaddr, d.dram__awlen, d.dram__awsize, d.dram__awburst))
        if w:
            self._write_beat(int(d.dram__wdata.value), int(d.dram__wstrb.value), bool(d.dram__wlast.value))
        if b:
            self.writes.popleft()
            self.write_bursts_done -= 1
            self.pending_b -= 1

    def _burst(self, what: str, addr, length, size, kind) -> _Burst:
        burst = _Burst(int(addr.value), int(length.value) + 1, 1 << int(size.value))
        if int(kind.value) != 1:
            self.violations.append(f"{what} burst type {int(kind.value)} is not INCR")
        last = (burst.addr & ~(burst.size - 1)) + burst.beats * burst.size - 1
        if burst.addr >> 12 != last >> 12:
            self.violations.append(f"{what} burst at 0x{burst.addr:x}, {burst.beats} x {burst.size} bytes, "
                                   f"crosses a 4 KiB boundary")
        return burst

    def _write_beat(self, data: int, strobe: int, wlast: bool) -> None:
        if len(self.writes) <= self.write_bursts_done:
            self.violations.append("write data beat before its address")
            return
        head = self.writes[self.write_bursts_done]
        lane0 = head.beat_addr() & ~(self.bus - 1)
        raw = data.to_bytes(self.bus, "little")
        for i in range(self.bus):
            if strobe >> i & 1:
                offset = lane0 + i - self.base
                if 0 <= offset < len(self.mem):
                    self.mem[offset] = raw[i]
                else:
                    self.violations.append(f"write to 0x{lane0 + i:x} outside the DRAM image")
        head.done += 1
        last = head.done == head.beats
        if last != wlast:
            self.violations.append("wlast does not mark the burst's last beat")
        if last:
            self.write_bursts_done += 1
            self.pending_b += 1


@dataclass
class _LiteOp:
    write: bool
    addr: int
    data: int = 0
    addr_done: bool = False
    data_done: bool = False
    event: cocotb.triggers.Event = field(default_factory=cocotb.triggers.Event)


class AxiLiteMaster:
    """Register access over AXI4-Lite, one transaction at a time."""

    def __init__(self, dut):
        self.dut = dut
        self.queue: deque[_LiteOp] = deque()
        self.put = _Writer(dut, "ctrl__")

    async def write(self, addr: int, data: int) -> None:
        op = _LiteOp(True, addr, data)
        self.queue.append(op)
        await op.event.wait()

    async def read(self, addr: int) -> int:
        op = _LiteOp(False, addr)
        self.queue.append(op)
        await op.event.wait()
        return op.data

    def drive(self) -> None:
        put, op = self.put, self.queue[0] if self.queue else None
        write, read = bool(op and op.write), bool(op and not op.write)
        put("awvalid", int(write and not op.addr_done))
        put("wvalid", int(write and not op.data_done))
        put("bready", int(write and op.addr_done and op.data_done))
        put("arvalid", int(read and not op.addr_done))
        put("rready", int(read and op.addr_done))
        if op:
            put("awaddr", op.addr)
            put("araddr", op.addr)
            put("wdata", op.data if op.write else 0)
        put("wstrb", 0xF)

    def sample(self) -> None:
        if not self.queue:
            return
        d, op = self.dut, self.queue[0]
        if op.write:
            op.addr_done |= bool(d.ctrl__awvalid.value and d.ctrl__awready.value)
            op.data_done |= bool(d.ctrl__wvalid.value and d.ctrl__wready.value)
            finished = bool(d.ctrl__bvalid.value and d.ctrl__bready.value)
        else:
            op.addr_done |= bool(d.ctrl__arvalid.value and d.ctrl__arready.value)
            finished = bool(d.ctrl__rvalid.value and d.ctrl__rready.value)
            if finished:
                op.data = int(d.ctrl__rdata.value)
        if finished:
            self.queue.popleft()
            op.event.set()


class ClockedBus:
    """One loop per clock: every component drives after the falling edge and samples before the rising one."""

    def __init__(self, dut, components: list):
        self.dut, self.components, self.cycles = dut, components, 0

    async def run(self) -> None:
        while True:
            await FallingEdge(self.dut.clk)
            for c in self.components:
                c.drive()
            await ReadOnly()
            for c in self.components:
                c.sample()
            self.cycles += 1


@dataclass
class Completion:
    status: str
    cycles: int
    error_code: int
    error_insn: int
    pcs: tuple[int, int, int]
    unit_state: int
    status_reg: int
    digest: int


class AcceleratorDriver:
    def __init__(self, lite: AxiLiteMaster, base: int):
        self.lite, self.base = lite, base

    async def start(self, insn_count: int) -> None:
        await self.lite.write(OFFSETS["DRAM_BASE_LO"], self.base & 0xFFFF_FFFF)
        await self.lite.write(OFFSETS["DRAM_BASE_HI"], self.base >> 32)
        await self.lite.write(OFFSETS["INSN_COUNT"], insn_count)
        await self.lite.write(OFFSETS["CTRL"], CTRL_START)


class CompletionMonitor:
    def __init__(self, dut, lite: AxiLiteMaster, bus: ClockedBus):
        self.dut, self.lite, self.bus = dut, lite, bus

    async def wait(self, max_cycles: int) -> Completion:
        start = self.bus.cycles
        status = "timeout"
        while self.bus.cycles - start < max_cycles:
            await FallingEdge(self.dut.clk)
            if self.dut.irq.value:
                break
        reg = await self.lite.read(OFFSETS["STATUS"])
        if reg & STATUS_ERROR:
            status = "error"
        elif reg & STATUS_DONE:
            status = "done"
        cycles = await self.lite.read(OFFSETS["CYCLES_LO"]) | await self.lite.read(OFFSETS["CYCLES_HI"]) << 32
        values = [await self.lite.read(OFFSETS[name]) for name in (
            "ERROR_CODE", "ERROR_INSN", "LOAD_PC", "COMPUTE_PC", "STORE_PC", "UNIT_STATE", "CONFIG_DIGEST")]
        return Completion(status, cycles, values[0], values[1], tuple(values[2:5]), values[5], reg, values[6])


class Scoreboard:
    """Bit-exact comparison of RTL outputs with the reference model's."""

    def __init__(self, program: Program):
        self.program = program
        self.reference = run_functional(program)
        self.mismatches: list[str] = []

    def check(self, dram: bytes) -> None:
        for t in self.program.outputs:
            got = self.program.read_tensor(dram, t.name)
            want = self.reference.outputs[t.name]
            if not (got == want).all():
                bad = int((got != want).sum())
                self.mismatches.append(f"output '{t.name}': {bad} of {want.size} values differ")


class ProgramBench:
    """The testbench: clock, DRAM, register master, driver, monitor and (optionally) scoreboard."""

    def __init__(self, dut, program: Program, base: int, stall_percent: int = 0, seed: int = 1):
        self.dut, self.program = dut, program
        self.dram = AxiDram(dut, bytes(program.dram_image()), base, stall_percent, seed)
        self.lite = AxiLiteMaster(dut)
        self.bus = ClockedBus(dut, [self.dram, self.lite])
        self.driver = AcceleratorDriver(self.lite, base)
        self.monitor = CompletionMonitor(dut, self.lite, self.bus)

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns", impl="gpi").start())
        self.dut.rst.value = 1
        self.dram.drive()
        self.lite.drive()
        for _ in range(4):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        cocotb.start_soon(self.bus.run())

    async def run(self, max_cycles: int) -> Completion:
        await self.reset()
        await self.driver.start(len(self.program.insns))
        return await self.monitor.wait(max_cycles)


def write_result(path: Path, done: Completion, bus_cycles: int, violations: int, dram: bytes) -> None:
    header = (f"tw-result status={done.status} cycles={done.cycles} error_code={done.error_code} "
              f"error_insn={done.error_insn} load_pc={done.pcs[0]} compute_pc={done.pcs[1]} store_pc={done.pcs[2]} "
              f"unit_state={done.unit_state} status_reg={done.status_reg} digest={done.digest} "
              f"sim_cycles={bus_cycles} violations={violations}\n")
    path.write_bytes(header.encode() + bytes(dram))


@cocotb.test()
async def program_matches_reference(dut) -> None:
    """Scenario: load a program, run it to done, and (if asked) match the functional simulator bit for bit."""
    program = Program.load(os.environ["TW_PROGRAM"])
    bench = ProgramBench(dut, program, int(os.environ["TW_DRAM_BASE"]), int(os.environ.get("TW_STALL", "0")),
                         int(os.environ.get("TW_SEED", "1")))
    done = await bench.run(int(os.environ["TW_MAX_CYCLES"]))
    write_result(Path(os.environ["TW_RESULT"]), done, bench.bus.cycles, len(bench.dram.violations), bench.dram.mem)
    assert not bench.dram.violations, f"AXI protocol violations: {bench.dram.violations[:5]}"
    if os.environ.get("TW_CHECK") == "1":
        assert done.status == "done", f"the run ended with status {done.status}"
        scoreboard = Scoreboard(program)
        scoreboard.check(bytes(bench.dram.mem))
        assert not scoreboard.mismatches, "; ".join(scoreboard.mismatches)
