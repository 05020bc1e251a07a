"""The accelerator top level: fetch, load, compute, store, queues, scratchpads, registers, DRAM port.

`Accelerator(config)` is the contract shared with verification and the FPGA wrappers: an AXI4
master `dram` (`hw/axi.py`), an AXI4-Lite slave `ctrl` with the register map below, and `irq`
(high while STATUS.done or STATUS.error). Clock and reset: the default `sync` domain.

Registers (32 bit, byte offsets): 0x00 CTRL (write bit0 = 1 starts a run and clears done/error;
ignored while busy), 0x04 STATUS (bit0 busy, bit1 done, bit2 error), 0x08 INSN_COUNT,
0x0C DRAM_BASE_LO, 0x10 DRAM_BASE_HI (reads 0: addresses are 32 bits), 0x14/0x18 CYCLES (from
start to done or error), 0x1C ERROR_CODE, 0x20 ERROR_INSN, 0x24 CONFIG_DIGEST, 0x28 LOAD_PC,
0x2C COMPUTE_PC, 0x30 STORE_PC, 0x34 UNIT_STATE (bits [3u+2:3u], u = load 0, compute 1, store 2:
bit0 busy, bit1 waiting for a token, bit2 waiting for a command).
Error codes: 0 none, 1 illegal opcode, 2 illegal memory id, 3 scratchpad address out of range,
4 micro-op range out of range, 5 ALU opcode not built, 6 nonzero padding where none is allowed,
and three beyond the shared list: 7 a token flag toward a stage the unit does not have (the
functional simulator's "has no prev stage"), 8 INSN_COUNT instructions without a FINISH, 9 deadlock
(every unit waits on a token or an empty queue and fetch can send nothing, for 8 cycles; ERROR_INSN
is the blocked instruction of the first such unit in the order load, compute, store). On an
error, fetch stops, every unit finishes the instruction it is executing (no AXI burst is cut),
drops its queue and goes idle; then busy falls with error set and done clear.
DRAM_BASE must be a multiple of max(16, bus width in bytes): the low bits of a write to
DRAM_BASE_LO are dropped (and read back as 0). Elements then never straddle a bus word and no
instruction crosses 4 KiB. Read and write responses are not checked (RRESP/BRESP are ignored).

Memories: uop, inp, wgt and the accumulator have one write and one read port each; the
accumulator's read port belongs to the tensor core (GEMM and ALU share it). The store unit reads
the output buffer (VTA's OUT memory): acc_depth rows of batch * block_out * out_width bits, written
together with every accumulator write (compute's whole rows and the ACC DMA's chunks) with each
lane narrowed to its low out_width bits, so it always equals the narrowed accumulator.

Timing model (cycles; see each unit's module for details):
- fetch: bursts of up to 4 instructions (`instruction_width / bus_width` beats each, never across
  4 KiB) into an 8-entry buffer; dispatch 1 instruction/cycle to a queue with room.
- every unit instruction: 1 cycle to take the command (none when it is waiting as the previous
  one pushes its tokens), 1 to pop tokens (when available), 1 to check and start, the body, 1 to
  push tokens (when there is room).
- GEMM/ALU body: 1 micro-op per cycle, iter_out * iter_in * (uop_end - uop_begin) cycles, plus
  the 4-stage pipeline fill/drain (`hw/core.py`); each GEMM micro-op is batch * block_in *
  block_out MACs. An ALU with use_imm=0 (and no reset) reads two accumulator rows per micro-op
  through the one read port: 2 cycles per micro-op (2n + 3 for the loop). Read-after-write on
  accumulator rows never stalls. Measured whole-machine cost of one more GEMM or ALU instruction of
  n micro-ops: n + 8 cycles, 2n + 7 for an ALU with use_imm=0 (tests/hw/test_top.py checks that n
  more micro-ops cost exactly n more cycles, 2n with use_imm=0).
- LOAD body: 1 cycle of setup per DRAM row, one AR per burst (<= 256 beats, split at 4 KiB), the
  DRAM read latency, then per element max(1, element_bytes / bus_bytes) beats at 1 beat/cycle
  (1 element/cycle when several share a beat); padding elements 1 cycle each (`hw/dma.py`).
  Measured with a 1-cycle-latency DRAM: a LOAD of k multi-beat elements costs k * beats + 9 cycles.
- STORE body: per element max(1, out_row_bytes / bus_bytes) beats at 1 beat/cycle, then the last
  write response (measured: k sub-word elements cost k + 6 cycles).
- The units run concurrently; only the tokens order them. They share the DRAM port through a
  round-robin burst arbiter (`hw/arbiter.py`): one AR every other cycle at most, R beats back to
  back. On vta-default (64-bit bus) a 16x16 int8 weight tile is 32 beats, an input row 2 beats, an
  output row 2 beats: a blocked GEMM is compute-bound when each weight tile meets >= 32 input rows.
- Measured (Verilator harness of cosim/, vta-default, double-buffered 128x256x1024 GEMM, weights
  streamed in 2-column blocks): 90.2 % of peak MACs; the rest is the unoverlapped first loads and
  the reset GEMMs, the hardware adds < 0.2 % over that bound.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from .arbiter import DramArbiter
from .axi import AXI4LiteSignature, AXI4Signature
from .compute import ComputeUnit
from .dma import geometry
from .fetch import Fetch
from .load import LoadUnit
from .queues import CommandQueue, TokenQueue
from .scratchpad import Scratchpad, chunk_write_to_row, narrow_row_write
from .store import StoreUnit
from .unit import ERROR_DEADLOCK, ERROR_NO_FINISH

REGISTERS = {
    "CTRL": 0x00, "STATUS": 0x04, "INSN_COUNT": 0x08, "DRAM_BASE_LO": 0x0C, "DRAM_BASE_HI": 0x10,
    "CYCLES_LO": 0x14, "CYCLES_HI": 0x18, "ERROR_CODE": 0x1C, "ERROR_INSN": 0x20, "CONFIG_DIGEST": 0x24,
    "LOAD_PC": 0x28, "COMPUTE_PC": 0x2C, "STORE_PC": 0x30, "UNIT_STATE": 0x34,
}


def dram_base_alignment(config: AccelConfig) -> int:
    """The byte alignment DRAM_BASE must have: a whole bus word and a whole instruction."""
    return max(16, config.bus_bytes)


class Accelerator(wiring.Component):
    """The whole accelerator for one config; see the module docstring for ports and registers."""

    def __init__(self, config: AccelConfig):
        self._config = config
        super().__init__({
            "dram": Out(AXI4Signature(addr_width=32, data_width=config.bus_width)),
            "ctrl": In(AXI4LiteSignature(addr_width=8, data_width=32)),
            "irq": Out(1),
        })

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        m.submodules.fetch = fetch = Fetch(c)
        m.submodules.load = load = LoadUnit(c)
        m.submodules.compute = compute = ComputeUnit(c)
        m.submodules.store = store = StoreUnit(c)
        m.submodules.arbiter = arbiter = DramArbiter(c.bus_width, readers=5)
        units = {"load": load, "compute": compute, "store": store}

        # --- DRAM port ------------------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.dram), arbiter.dram)
        for k, port in enumerate((fetch.port, compute.uop_port, compute.acc_port, load.inp_port, load.wgt_port)):
            wiring.connect(m, port, arbiter.reader(k))
        wiring.connect(m, store.port, arbiter.writer)

        # --- command and token queues ---------------------------------------------------------------
        queues = {}
        for name, unit in units.items():
            queue = queues[name] = CommandQueue(c)
            m.submodules[f"{name}_queue"] = queue
            wiring.connect(m, getattr(fetch, name), queue.w)
            wiring.connect(m, queue.r, unit.cmd)
        load_queue, compute_queue, store_queue = queues["load"], queues["compute"], queues["store"]
        start = Signal()
        queues_empty = Signal()
        m.d.comb += queues_empty.eq(load_queue.empty & compute_queue.empty & store_queue.empty)
        links = {"load_to_compute": (load, "next", compute, "prev"),
                 "compute_to_load": (compute, "prev", load, "next"),
                 "compute_to_store": (compute, "next", store, "prev"),
                 "store_to_compute": (store, "prev", compute, "next")}
        for name, (producer, p_side, consumer, c_side) in links.items():
            tokens = TokenQueue(c.dep_queue_depth)
            m.submodules[f"tokens_{name}"] = tokens
            m.d.comb += [tokens.push.eq(getattr(producer, f"{p_side}_push")),
                         getattr(producer, f"{p_side}_can_push").eq(tokens.can_push),
                         tokens.pop.eq(getattr(consumer, f"{c_side}_pop")),
                         getattr(consumer, f"{c_side}_can_pop").eq(tokens.can_pop),
                         tokens.clear.eq(start)]

        # --- scratchpads --------------------------------------------------------------------------------
        for memory, width, depth in (("inp", c.inp_row_bytes * 8, c.inp_depth),
                                     ("wgt", c.wgt_row_bytes * 8, c.wgt_depth),
                                     ("uop", c.uop_width, c.uop_depth)):
            _, _, chunks = geometry(c, memory.upper())
            pad = Scratchpad(depth, width, chunks, transparent=(False,))
            m.submodules[f"{memory}_scratchpad"] = pad
            writer = load if memory != "uop" else compute
            chunk_write_to_row(m, getattr(writer, f"{memory}_write"), pad.write, chunks)
            wiring.connect(m, getattr(compute, f"{memory}_read"), pad.read0)
        _, _, acc_chunks = geometry(c, "ACC")
        # The accumulator has one read port (the tensor core's). The store unit reads the output
        # buffer, written with every accumulator write, each lane narrowed to out_width bits: one
        # block RAM copy of each instead of one accumulator copy per read port.
        m.submodules.acc_scratchpad = acc = Scratchpad(c.acc_depth, c.acc_row_bytes * 8, acc_chunks,
                                                       transparent=(True,))
        m.submodules.out_buffer = out = Scratchpad(c.acc_depth, c.out_row_bytes * 8, acc_chunks,
                                                   transparent=(False,))
        wiring.connect(m, compute.acc_write, acc.write)
        narrow_row_write(m, compute.acc_write, out.write, c.batch * c.block_out, c.acc_width, c.out_width)
        wiring.connect(m, compute.acc_read, acc.read0)
        wiring.connect(m, store.out_read, out.read0)

        # --- run control and status -------------------------------------------------------------------
        # `fault` halts the units at once; STATUS.error shows only once they have all stopped.
        busy, done, error, fault = Signal(), Signal(), Signal(), Signal()
        error_code, error_insn = Signal(32), Signal(32)
        insn_count, dram_base, cycles = Signal(32), Signal(32), Signal(64)
        for unit in (fetch, load, compute, store):
            m.d.comb += [unit.halt.eq(fault)]
        m.d.comb += [fetch.start.eq(start), fetch.base.eq(dram_base), fetch.count.eq(insn_count)]
        for unit in units.values():
            m.d.comb += unit.base.eq(dram_base)
        all_idle = Signal()
        m.d.comb += all_idle.eq(fetch.idle & load.idle & compute.idle & store.idle & arbiter.idle & queues_empty
                                & ~start)
        any_error = fetch.error | load.error | compute.error | store.error
        # Deadlock: fetch can send nothing and every unit waits on a token or on an empty queue, with no
        # DRAM traffic; such a state never changes, so 8 cycles of it is an error (code 9), as the
        # functional simulator reports it. ERROR_INSN is the first unit's (load, compute, store) blocked insn.
        stuck = Signal()
        m.d.comb += stuck.eq(fetch.blocked & arbiter.idle & ~start & ~any_error & ~all_idle & ~fault &
                             (load.token_blocked | (load.idle & load_queue.empty)) &
                             (compute.token_blocked | (compute.idle & compute_queue.empty)) &
                             (store.token_blocked | (store.idle & store_queue.empty)))
        stuck_cycles = Signal(range(9))
        with m.If(stuck & busy):
            m.d.sync += stuck_cycles.eq(stuck_cycles + 1)
        with m.Else():
            m.d.sync += stuck_cycles.eq(0)
        deadlock = Signal()
        m.d.comb += deadlock.eq(stuck_cycles == 8)
        blocked_insn = Signal(32)
        for unit in (store, compute, load):     # the last assignment wins: load first
            with m.If(unit.token_blocked):
                m.d.comb += blocked_insn.eq(unit.pc)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(~fault):
                with m.If(deadlock):
                    m.d.sync += [fault.eq(1), error_code.eq(ERROR_DEADLOCK), error_insn.eq(blocked_insn)]
                for unit in (store, compute, load, fetch):   # first error wins; fetch's if several at once
                    with m.If(unit.error):
                        m.d.sync += [fault.eq(1), error_code.eq(unit.error_code), error_insn.eq(unit.error_insn)]
            with m.If(all_idle):
                with m.If(fault | any_error):
                    m.d.sync += [busy.eq(0), error.eq(1)]
                with m.Elif(fetch.finished):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                with m.Elif(fetch.exhausted):
                    m.d.sync += [busy.eq(0), error.eq(1), fault.eq(1), error_code.eq(ERROR_NO_FINISH),
                                 error_insn.eq(insn_count)]
        with m.If(start):
            m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), fault.eq(0), error_code.eq(0), error_insn.eq(0),
                         cycles.eq(0)]
        m.d.comb += self.irq.eq(done | error)

        # --- AXI4-Lite register file -----------------------------------------------------------------
        ctrl = self.ctrl
        b_valid, r_valid, r_data = Signal(), Signal(), Signal(32)
        m.d.comb += [ctrl.bvalid.eq(b_valid), ctrl.rvalid.eq(r_valid), ctrl.rdata.eq(r_data)]
        with m.If(ctrl.bvalid & ctrl.bready):
            m.d.sync += b_valid.eq(0)
        with m.If(ctrl.rvalid & ctrl.rready):
            m.d.sync += r_valid.eq(0)
        with m.If(ctrl.awvalid & ctrl.wvalid & ~b_valid):
            m.d.comb += [ctrl.awready.eq(1), ctrl.wready.eq(1)]
            m.d.sync += b_valid.eq(1)
            with m.Switch(ctrl.awaddr[2:]):
                with m.Case(REGISTERS["CTRL"] >> 2):
                    m.d.comb += start.eq(ctrl.wdata[0] & ~busy)
                with m.Case(REGISTERS["INSN_COUNT"] >> 2):
                    m.d.sync += insn_count.eq(ctrl.wdata)
                with m.Case(REGISTERS["DRAM_BASE_LO"] >> 2):
                    m.d.sync += dram_base.eq(ctrl.wdata & ~(dram_base_alignment(c) - 1))
        unit_state = Signal(9)
        m.d.comb += unit_state.eq(load.state | (compute.state << 3) | (store.state << 6))
        readable = {
            "STATUS": busy | (done << 1) | (error << 2), "INSN_COUNT": insn_count, "DRAM_BASE_LO": dram_base,
            "CYCLES_LO": cycles[:32], "CYCLES_HI": cycles[32:], "ERROR_CODE": error_code,
            "ERROR_INSN": error_insn, "CONFIG_DIGEST": int(c.digest[:8], 16), "LOAD_PC": load.pc,
            "COMPUTE_PC": compute.pc, "STORE_PC": store.pc, "UNIT_STATE": unit_state,
        }
        with m.If(ctrl.arvalid & ~r_valid):
            m.d.comb += ctrl.arready.eq(1)
            m.d.sync += r_valid.eq(1)
            with m.Switch(ctrl.araddr[2:]):
                for name, value in readable.items():
                    with m.Case(REGISTERS[name] >> 2):
                        m.d.sync += r_data.eq(value)
                with m.Default():
                    m.d.sync += r_data.eq(0)
        return m
