"""What the load, compute and store units share: token ports and the per-instruction sequence.

Each unit runs its command queue in order. For the instruction at the head it (1) waits until
every token queue it pops has a token and takes them all in one cycle, (2) checks and executes the
instruction, (3) waits until every token queue it pushes has room and pushes them all in one cycle
— the order of `sim/functional.py`. Units report their state for UNIT_STATE: bit0 busy, bit1
waiting for a token, bit2 waiting for a command (`contract/registers.py`); errors are the codes of
`contract/error_codes.py`. On `halt` (an error anywhere) a unit finishes the
instruction it is executing (never an AXI burst half done), gives up token waits, drains its queue
and goes idle.
"""

from __future__ import annotations

from amaranth import Module, Signal, Value
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..contract.error_codes import CODE_WIDTH
from ..contract.registers import UNIT_COMMAND_WAIT, UNIT_STATE_BITS, UNIT_TOKEN_WAIT
from .queues import INDEX_WIDTH


def token_members(sides: tuple[str, ...]) -> dict[str, object]:
    """Signature members for the token queues toward `sides` ('prev', 'next')."""
    out: dict[str, object] = {}
    for side in sides:
        out.update({f"{side}_pop": Out(1), f"{side}_can_pop": In(1),
                    f"{side}_push": Out(1), f"{side}_can_push": In(1)})
    return out


def status_members() -> dict[str, object]:
    return {"halt": In(1), "error": Out(1), "error_code": Out(CODE_WIDTH), "error_insn": Out(INDEX_WIDTH),
            "pc": Out(INDEX_WIDTH), "state": Out(UNIT_STATE_BITS), "idle": Out(1), "token_blocked": Out(1)}


def tokens_ready(unit, head: data.View, sides: tuple[str, ...], kind: str) -> Value:
    """True when every token queue this instruction pops (kind 'pop') or pushes ('push') allows it."""
    ok: Value = Value.cast(1)
    for side in sides:
        flag = getattr(head, f"{kind}_{side}")
        ok = ok & (~flag | getattr(unit, f"{side}_can_{kind}"))
    return ok


def take_tokens(m: Module, unit, head: data.View, sides: tuple[str, ...], kind: str) -> None:
    for side in sides:
        m.d.comb += getattr(unit, f"{side}_{kind}").eq(getattr(head, f"{kind}_{side}"))


class Sequencer:
    """The IDLE -> POP -> EXEC -> PUSH (-> POP) state machine of one unit, exec states in the middle.

    Call `build(m)` inside elaborate; states named in `exec_states` are written by the caller in
    the FSM context returned, ending with `m.next = "PUSH"` (or "IDLE" on error).
    """

    def __init__(self, unit, layout: data.StructLayout, sides: tuple[str, ...]):
        self.unit = unit
        self.sides = sides
        self.word = Signal(layout.size)
        self.index = Signal(INDEX_WIDTH)
        self.head = layout(self.word)
        self.executing = Signal()
        self.waiting_token = Signal()

    def head_states(self, m: Module, first_exec: str, halted: Value) -> None:
        """The IDLE and POP states; must be called inside `with m.FSM()`."""
        unit, cmd = self.unit, self.unit.cmd
        with m.State("IDLE"):
            with m.If(halted):
                m.d.comb += cmd.ready.eq(1)             # drain the queue
            with m.Else():
                self.take_next(m)
            m.d.comb += unit.state.eq(UNIT_COMMAND_WAIT)
        with m.State("POP"):
            m.d.comb += [self.waiting_token.eq(1), unit.state.eq(UNIT_TOKEN_WAIT),
                         unit.token_blocked.eq(~tokens_ready(unit, self.head, self.sides, "pop"))]
            with m.If(halted):
                m.next = "IDLE"
            with m.Elif(tokens_ready(unit, self.head, self.sides, "pop")):
                take_tokens(m, unit, self.head, self.sides, "pop")
                m.next = first_exec

    def take_next(self, m: Module) -> None:
        """Take the next command if there is one (also straight from PUSH, saving a cycle)."""
        cmd = self.unit.cmd
        with m.If(cmd.valid):
            m.d.comb += cmd.ready.eq(1)
            m.d.sync += [self.word.eq(cmd.payload.insn), self.index.eq(cmd.payload.index)]
            m.next = "POP"
        with m.Else():
            m.next = "IDLE"

    def push_state(self, m: Module, halted: Value) -> None:
        unit = self.unit
        with m.State("PUSH"):
            m.d.comb += [self.waiting_token.eq(1), unit.state.eq(UNIT_TOKEN_WAIT),
                         unit.token_blocked.eq(~tokens_ready(unit, self.head, self.sides, "push"))]
            with m.If(halted):
                m.next = "IDLE"
            with m.Elif(tokens_ready(unit, self.head, self.sides, "push")):
                take_tokens(m, unit, self.head, self.sides, "push")
                self.take_next(m)

    def fail(self, m: Module, code: int) -> None:
        """Report `code` for the current instruction (one cycle) and stop it."""
        unit = self.unit
        m.d.comb += [unit.error.eq(1), unit.error_code.eq(code), unit.error_insn.eq(self.index)]
        m.next = "IDLE"
