"""Run a Program on `Accelerator` under Amaranth's Python simulator, with an AXI DRAM model.

`simulate(program, inputs)` places the program's DRAM image at `dram_base`, programs the control
registers over AXI4-Lite, starts the run and serves the AXI4 DRAM port cycle by cycle until `irq`
(or `max_cycles`). It returns the final DRAM image (the program's region), the cycle count and the
status registers. This is the slow, exact reference path (a few thousand cycles per second):
meant for small programs in tests; the Verilator harnesses in `cosim/` are the fast path.
`AmaranthEngine` ("amaranth") is the same run behind the run interface of `contract/engine.py`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from ..configs import AccelConfig
from ..contract import error_codes
from ..contract.engine import RunResult, Stats
from ..contract.registers import CTRL_START, DATA_WIDTH, OFFSETS, STATUS_DONE, STATUS_ERROR
from ..errors import TensorweaveError
from ..isa import Program, build_isa
from ..isa.asm import disassemble_insn
from .top import Accelerator, dram_base_alignment


class HardwareSimError(TensorweaveError, RuntimeError):
    """The simulated accelerator did not finish; the message gives its registers."""


@dataclass
class HardwareRun:
    dram: bytearray                  # the program's DRAM region after the run
    outputs: dict[str, np.ndarray]
    cycles: int                      # CYCLES register
    status: int
    error_code: int
    error_insn: int
    registers: dict[str, int] = field(default_factory=dict)
    bursts: list[tuple[str, int, int]] = field(default_factory=list)   # (read|write, address, beats)

    @property
    def done(self) -> bool:
        return bool(self.status & STATUS_DONE)

    @property
    def error(self) -> bool:
        return bool(self.status & STATUS_ERROR)


class AxiDram:
    """A byte-addressed AXI4 slave: one read and one write burst in flight, in order, no wait states
    beyond `read_latency` cycles between accepting a read burst and its first beat."""

    def __init__(self, size: int, bus_bytes: int, read_latency: int = 1):
        self.mem = bytearray(size)
        self.bus_bytes = bus_bytes
        self.read_latency = read_latency
        self.reads: deque[list[int]] = deque()   # [addr, beats_left, delay]
        self.writes: deque[list[int]] = deque()  # [addr, beats_left]
        self.responses = 0
        self.bursts_read = 0
        self.bursts_written = 0
        self.bursts: list[tuple[str, int, int]] = []

    def word(self, addr: int) -> int:
        end = addr + self.bus_bytes
        if end > len(self.mem):
            raise HardwareSimError(f"DRAM read at {addr:#x} is past the {len(self.mem)}-byte model")
        return int.from_bytes(self.mem[addr:end], "little")

    def check_burst(self, kind: str, addr: int, beats: int) -> None:
        """AXI rules the accelerator promises: aligned INCR bursts of <= 256 beats inside 4 KiB."""
        if addr % self.bus_bytes or addr // 4096 != (addr + beats * self.bus_bytes - 1) // 4096:
            raise HardwareSimError(f"{kind} burst of {beats} beats at {addr:#x} is unaligned or crosses 4 KiB")
        self.bursts.append((kind, addr, beats))

    def write(self, addr: int, data: int, strobes: int) -> None:
        if addr + self.bus_bytes > len(self.mem):
            raise HardwareSimError(f"DRAM write at {addr:#x} is past the {len(self.mem)}-byte model")
        raw = data.to_bytes(self.bus_bytes, "little")
        for k in range(self.bus_bytes):
            if strobes >> k & 1:
                self.mem[addr + k] = raw[k]


async def axil_write(ctx, ctrl, offset: int, value: int) -> None:
    """One AXI4-Lite write (address and data offered together; either may be taken first)."""
    ctx.set(ctrl.awaddr, offset)
    ctx.set(ctrl.wdata, value)
    ctx.set(ctrl.wstrb, 0xF)
    ctx.set(ctrl.awvalid, 1)
    ctx.set(ctrl.wvalid, 1)
    address_taken = data_taken = False
    while not (address_taken and data_taken):
        address_now, data_now = ctx.get(ctrl.awready), ctx.get(ctrl.wready)
        await ctx.tick()
        if address_now and not address_taken:
            address_taken = True
            ctx.set(ctrl.awvalid, 0)
        if data_now and not data_taken:
            data_taken = True
            ctx.set(ctrl.wvalid, 0)
    ctx.set(ctrl.bready, 1)
    while not ctx.get(ctrl.bvalid):
        await ctx.tick()
    await ctx.tick()
    ctx.set(ctrl.bready, 0)


async def axil_read(ctx, ctrl, addr: int) -> int:
    """One AXI4-Lite read of the register at byte offset `addr`."""
    ctx.set(ctrl.araddr, addr)
    ctx.set(ctrl.arvalid, 1)
    ctx.set(ctrl.rready, 1)
    while not ctx.get(ctrl.arready):
        await ctx.tick()
    await ctx.tick()
    ctx.set(ctrl.arvalid, 0)
    while not ctx.get(ctrl.rvalid):
        await ctx.tick()
    value = ctx.get(ctrl.rdata)
    await ctx.tick()
    ctx.set(ctrl.rready, 0)
    return value



async def serve_dram(ctx, dram, model: AxiDram, observe=None) -> None:
    """One cycle of the DRAM model: drive the slave side, sample the master, tick, update.

    `observe(ctx)`, if given, runs after the slave side is driven and before the clock edge."""
    bb = model.bus_bytes
    read = model.reads[0] if model.reads and model.reads[0][2] == 0 else None
    ctx.set(dram.arready, len(model.reads) < 4)
    ctx.set(dram.awready, len(model.writes) < 4)
    if read is not None:
        ctx.set(dram.rvalid, 1)
        ctx.set(dram.rdata, model.word(read[0]))
        ctx.set(dram.rlast, read[1] == 1)
    else:
        ctx.set(dram.rvalid, 0)
    ctx.set(dram.wready, 1 if model.writes else 0)
    ctx.set(dram.bvalid, 1 if model.responses else 0)
    ar = ctx.get(dram.arvalid) and len(model.reads) < 4
    if ar:
        ar_req = [ctx.get(dram.araddr), ctx.get(dram.arlen) + 1, model.read_latency]
    r = read is not None and ctx.get(dram.rready)
    aw = ctx.get(dram.awvalid) and len(model.writes) < 4
    if aw:
        aw_req = [ctx.get(dram.awaddr), ctx.get(dram.awlen) + 1]
    w = bool(model.writes) and ctx.get(dram.wvalid)
    if w:
        w_beat = (ctx.get(dram.wdata), ctx.get(dram.wstrb), ctx.get(dram.wlast))
    b = model.responses and ctx.get(dram.bready)
    if observe is not None:
        observe(ctx)
    await ctx.tick()
    for entry in model.reads:
        entry[2] = max(0, entry[2] - 1)
    if r:
        read[0] += bb
        read[1] -= 1
        if read[1] == 0:
            model.reads.popleft()
    if ar:
        model.check_burst("read", ar_req[0], ar_req[1])
        model.reads.append(ar_req)
        model.bursts_read += 1
    if w:
        burst = model.writes[0]
        data, strobes, last = w_beat
        model.write(burst[0], data, strobes)
        burst[0] += bb
        burst[1] -= 1
        if (burst[1] == 0) != bool(last):
            raise HardwareSimError(f"WLAST is {last} with {burst[1]} beats left in the write burst")
        if burst[1] == 0:
            model.writes.popleft()
            model.responses += 1
    if aw:
        model.check_burst("write", aw_req[0], aw_req[1])
        model.writes.append(aw_req)
        model.bursts_written += 1
    if b:
        model.responses -= 1


def simulate(program: Program, inputs: Mapping[str, np.ndarray] | None = None, *, dram_base: int = 0x1000,
             max_cycles: int = 200_000, read_latency: int = 1, config: AccelConfig | None = None,
             vcd: str | None = None) -> HardwareRun:
    """Run `program` on the Amaranth model of its config's accelerator; see the module docstring."""
    config = config or program.config
    image = program.dram_image(inputs)
    if dram_base % dram_base_alignment(config):
        raise HardwareSimError(f"dram_base {dram_base:#x} must be a multiple of {dram_base_alignment(config)} bytes "
                               "(an instruction and a bus word)")
    dut = Accelerator(config)
    model = AxiDram(dram_base + len(image) + 4096, config.bus_bytes, read_latency)
    model.mem[dram_base:dram_base + len(image)] = image
    result: dict[str, int] = {}

    async def bench(ctx) -> None:
        await axil_write(ctx, dut.ctrl, OFFSETS["INSN_COUNT"], len(program.insns))
        await axil_write(ctx, dut.ctrl, OFFSETS["DRAM_BASE_LO"], dram_base)
        await axil_write(ctx, dut.ctrl, OFFSETS["CTRL"], CTRL_START)
        for _ in range(max_cycles):
            if ctx.get(dut.irq):
                break
            await serve_dram(ctx, dut.dram, model)
        for name, offset in OFFSETS.items():
            result[name] = await axil_read(ctx, dut.ctrl, offset)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    dram = model.mem[dram_base:dram_base + len(image)]
    status = result["STATUS"]
    if not status & (STATUS_DONE | STATUS_ERROR):
        raise HardwareSimError(f"the accelerator did not finish within {max_cycles} cycles: " +
                               ", ".join(f"{k}={v:#x}" for k, v in result.items()))
    outputs = {t.name: program.read_tensor(dram, t.name) for t in program.outputs} if status & STATUS_DONE else {}
    cycles = result["CYCLES_LO"] | result["CYCLES_HI"] << DATA_WIDTH
    return HardwareRun(dram, outputs, cycles, status, result["ERROR_CODE"], result["ERROR_INSN"], result,
                       model.bursts)


class AmaranthEngine:
    """`simulate` as an engine of `contract/engine.py` ("amaranth"): outputs and the CYCLES register.

    By default the DRAM model answers a read burst the cycle after its address, as the C++ harness's
    does (`read_latency=0`), so the CYCLES count is the harness's, cycle for cycle. `stats` stays
    empty and `busy` None. A run that stops with STATUS.error is a `HardwareSimError` naming the
    error code and the instruction; `max_cycles` bounds the simulation (a few thousand cycles per second).
    """

    name = "amaranth"

    def __init__(self, max_cycles: int = 200_000, read_latency: int = 0):
        self.max_cycles, self.read_latency = max_cycles, read_latency

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        run = simulate(program, inputs, max_cycles=self.max_cycles, read_latency=self.read_latency)
        if run.error:
            where = run.error_insn
            shown = ""
            if 0 <= where < len(program.insns):
                isa = build_isa(program.config)
                try:
                    shown = f" ({disassemble_insn(isa, isa.decode(program.insns[where]))})"
                except (ValueError, KeyError):
                    shown = f" (word {program.insns[where]:#x})"
            meaning = error_codes.message(run.error_code)
            raise HardwareSimError(f"the accelerator flagged error {run.error_code} ({meaning}) at instruction "
                                   f"{where}{shown}")
        return RunResult(run.outputs, Stats(), run.dram, cycles=run.cycles, engine=self.name)
