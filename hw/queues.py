"""Command queues (fetch -> unit) and dependency-token queues (unit -> unit).

A command is an instruction word plus its index in the program (for the *_PC and ERROR_INSN
registers). A command queue is a `config.cmd_queue_depth`-entry FIFO in one memory. A token queue
carries no data, so it is a counter from 0 to `config.dep_queue_depth`: `pop` takes a token when
`count > 0`, `push` gives one when `count < depth`; both may happen in the same cycle. `clear`
empties it (a new run starts with no tokens, as the functional simulator does).
"""

from __future__ import annotations

from amaranth import Module, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract.registers import DATA_WIDTH
from ..isa import build_isa

# An instruction's index in the program, as the INSN_COUNT, *_PC and ERROR_INSN registers hold it.
INDEX_WIDTH = DATA_WIDTH


def command_layout(config: AccelConfig) -> data.StructLayout:
    return data.StructLayout({"insn": unsigned(build_isa(config).instruction_width),
                              "index": unsigned(INDEX_WIDTH)})


def command_stream(config: AccelConfig) -> stream.Signature:
    return stream.Signature(command_layout(config))


class CommandQueue(wiring.Component):
    """`config.cmd_queue_depth` commands, first in first out; On an error the units drain it."""

    def __init__(self, config: AccelConfig):
        self._config = config
        super().__init__({"w": In(command_stream(config)), "r": Out(command_stream(config)),
                          "empty": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        width = command_layout(self._config).size
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=width, depth=self._config.cmd_queue_depth)
        m.d.comb += [
            q.w_data.eq(self.w.payload), q.w_en.eq(self.w.valid), self.w.ready.eq(q.w_rdy),
            self.r.payload.eq(q.r_data), self.r.valid.eq(q.r_rdy), q.r_en.eq(self.r.ready),
            self.empty.eq(q.level == 0),
        ]
        return m


class TokenQueue(wiring.Component):
    """A dependency-token queue of `depth` tokens: a saturating counter with pop/push handshakes."""

    def __init__(self, depth: int):
        if depth < 1:
            raise ValueError(f"token queue depth must be at least 1, not {depth}")
        self._depth = depth
        super().__init__({"push": In(1), "pop": In(1), "clear": In(1),
                          "can_push": Out(1), "can_pop": Out(1), "count": Out(range(depth + 1))})

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        count = self.count
        m.d.comb += [self.can_pop.eq(count != 0), self.can_push.eq(count != self._depth)]
        inc = self.push & self.can_push
        dec = self.pop & self.can_pop
        with m.If(self.clear):
            m.d.sync += count.eq(0)
        with m.Elif(inc & ~dec):
            m.d.sync += count.eq(count + 1)
        with m.Elif(dec & ~inc):
            m.d.sync += count.eq(count - 1)
        return m
