"""The accelerator top level: fetch, load, compute, store, queues, scratchpads, registers, DRAM port.

`Accelerator(config)` is the contract shared with verification and the FPGA wrappers: an AXI4
master `dram` (`hw/axi.py`), an AXI4-Lite slave `ctrl` with the register map below, and `irq`
(high while STATUS.done or STATUS.error). Clock and reset: the default `sync` domain.

Registers: the map of `contract/registers.py` (CTRL starts a run, STATUS busy/done/error, INSN_COUNT,
DRAM_BASE, CYCLES from start to done or error, ERROR_CODE, ERROR_INSN, CONFIG_DIGEST, each unit's
PC and UNIT_STATE). Error codes: `contract/error_codes.py`; the deadlock code is raised when every
unit waits on a token or an empty queue and fetch can send nothing, for 8 cycles. On an
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
from ..contract import error_codes as errors
from ..contract.registers import (
    ADDR_WIDTH,
    CTRL_START,
    DATA_WIDTH,
    OFFSETS,
    REGISTERS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR,
    UNIT_STATE_BITS,
    UNIT_STATE_WIDTH,
    config_digest_value,
)
from ..contract.topology import UNITS
from .arbiter import DramArbiter
from .axi import AXI4LiteSignature, AXI4Signature
from .compute import ComputeUnit
from .dma import geometry
from .fetch import Fetch
from .load import LoadUnit
from .queues import CommandQueue, TokenQueue
from .scratchpad import Scratchpad, chunk_write_to_row, narrow_row_write
from .store import StoreUnit


def _bit(mask: int) -> int:
    """The position of a one-bit mask."""
    return mask.bit_length() - 1


def dram_base_alignment(config: AccelConfig) -> int:
    """The byte alignment DRAM_BASE must have: a whole bus word and a whole instruction."""
    return max(16, config.bus_bytes)


class Accelerator(wiring.Component):
    """The whole accelerator for one config; see the module docstring for ports and registers."""

    def __init__(self, config: AccelConfig):
        self._config = config
        super().__init__({
            "dram": Out(AXI4Signature(addr_width=32, data_width=config.bus_width)),
            "ctrl": In(AXI4LiteSignature(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)),
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
        assert tuple(units) == UNITS

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
        error_code, error_insn = Signal(DATA_WIDTH), Signal(DATA_WIDTH)
        insn_count, dram_base, cycles = Signal(DATA_WIDTH), Signal(DATA_WIDTH), Signal(2 * DATA_WIDTH)
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
                    m.d.sync += [fault.eq(1), error_code.eq(errors.DEADLOCK), error_insn.eq(blocked_insn)]
                for unit in (store, compute, load, fetch):   # first error wins; fetch's if several at once
                    with m.If(unit.error):
                        m.d.sync += [fault.eq(1), error_code.eq(unit.error_code), error_insn.eq(unit.error_insn)]
            with m.If(all_idle):
                with m.If(fault | any_error):
                    m.d.sync += [busy.eq(0), error.eq(1)]
                with m.Elif(fetch.finished):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                with m.Elif(fetch.exhausted):
                    m.d.sync += [busy.eq(0), error.eq(1), fault.eq(1), error_code.eq(errors.NO_FINISH),
                                 error_insn.eq(insn_count)]
        with m.If(start):
            m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), fault.eq(0), error_code.eq(errors.NONE), error_insn.eq(0),
                         cycles.eq(0)]
        m.d.comb += self.irq.eq(done | error)

        # --- AXI4-Lite register file -----------------------------------------------------------------
        ctrl = self.ctrl
        b_valid, r_valid, r_data = Signal(), Signal(), Signal(DATA_WIDTH)
        m.d.comb += [ctrl.bvalid.eq(b_valid), ctrl.rvalid.eq(r_valid), ctrl.rdata.eq(r_data)]
        with m.If(ctrl.bvalid & ctrl.bready):
            m.d.sync += b_valid.eq(0)
        with m.If(ctrl.rvalid & ctrl.rready):
            m.d.sync += r_valid.eq(0)
        with m.If(ctrl.awvalid & ctrl.wvalid & ~b_valid):
            m.d.comb += [ctrl.awready.eq(1), ctrl.wready.eq(1)]
            m.d.sync += b_valid.eq(1)
            with m.Switch(ctrl.awaddr[2:]):
                with m.Case(OFFSETS["CTRL"] >> 2):
                    m.d.comb += start.eq(ctrl.wdata[_bit(CTRL_START)] & ~busy)
                with m.Case(OFFSETS["INSN_COUNT"] >> 2):
                    m.d.sync += insn_count.eq(ctrl.wdata)
                with m.Case(OFFSETS["DRAM_BASE_LO"] >> 2):
                    m.d.sync += dram_base.eq(ctrl.wdata & ~(dram_base_alignment(c) - 1))
        unit_state = Signal(UNIT_STATE_WIDTH)
        states = load.state | (compute.state << UNIT_STATE_BITS) | (store.state << 2 * UNIT_STATE_BITS)
        m.d.comb += unit_state.eq(states)
        assert (_bit(STATUS_BUSY), _bit(STATUS_DONE), _bit(STATUS_ERROR)) == (0, 1, 2)
        readable = {
            "STATUS": busy | (done << _bit(STATUS_DONE)) | (error << _bit(STATUS_ERROR)), "INSN_COUNT": insn_count,
            "DRAM_BASE_LO": dram_base, "CYCLES_LO": cycles[:DATA_WIDTH], "CYCLES_HI": cycles[DATA_WIDTH:],
            "ERROR_CODE": error_code, "ERROR_INSN": error_insn, "CONFIG_DIGEST": config_digest_value(c),
            "LOAD_PC": load.pc, "COMPUTE_PC": compute.pc, "STORE_PC": store.pc, "UNIT_STATE": unit_state,
        }
        # Every register the contract marks readable, and no other, has a value here.
        assert set(readable) == {r.name for r in REGISTERS if r.readable}
        with m.If(ctrl.arvalid & ~r_valid):
            m.d.comb += ctrl.arready.eq(1)
            m.d.sync += r_valid.eq(1)
            with m.Switch(ctrl.araddr[2:]):
                for name, value in readable.items():
                    with m.Case(OFFSETS[name] >> 2):
                        m.d.sync += r_data.eq(value)
                with m.Default():
                    m.d.sync += r_data.eq(0)
        return m
