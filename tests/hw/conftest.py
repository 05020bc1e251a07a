import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.hw.simulate import simulate
from tensorweave.isa import assemble
from tensorweave.sim import run_functional


@pytest.fixture
def tiny():
    return load_config("tiny")


def values(a) -> str:
    return ",".join(str(int(v)) for v in np.asarray(a).ravel())


def run_both(program, **kwargs):
    """Run on the functional simulator and the Amaranth model; assert DRAM is equal byte for byte."""
    reference = run_functional(program)
    hardware = simulate(program, **kwargs)
    assert hardware.done and not hardware.error, hardware.registers
    assert bytes(hardware.dram) == bytes(reference.dram)
    for name, array in reference.outputs.items():
        assert np.array_equal(hardware.outputs[name], array)
    return reference, hardware


@pytest.fixture
def check():
    def _check(text: str, config, **kwargs):
        return run_both(assemble(text, config), **kwargs)
    return _check


@pytest.fixture
def fmt():
    return values


class ReadResponder:
    """DRAM behind a stream-shaped AXI read port (`port.ar` / `port.r`) in a testbench: every burst request is
    taken at once and its beats come back in order, one per cycle while the DUT is ready. Call `drive` before
    each clock edge and `advance` after it; `bursts` lists the (address, beats) requested."""

    def __init__(self, port, dram: bytes, bus: int) -> None:
        self.port, self.dram, self.bus = port, dram, bus
        self.queue: list[tuple[int, int]] = []
        self.bursts: list[tuple[int, int]] = []
        self._took, self._request = False, None

    def drive(self, ctx) -> None:
        port = self.port
        ctx.set(port.ar.ready, 1)
        if self.queue:
            addr, left = self.queue[0]
            ctx.set(port.r.valid, 1)
            ctx.set(port.r.payload, {"data": int.from_bytes(self.dram[addr:addr + self.bus], "little"),
                                     "last": left == 1})
        else:
            ctx.set(port.r.valid, 0)
        self._took = bool(self.queue) and bool(ctx.get(port.r.ready))
        self._request = None
        if ctx.get(port.ar.valid):
            payload = ctx.get(port.ar.payload)
            self._request = (int(payload.addr), int(payload.len) + 1)

    def advance(self) -> None:
        if self._took:
            addr, left = self.queue[0]
            self.queue[0] = (addr + self.bus, left - 1)
            if left == 1:
                self.queue.pop(0)
        if self._request:
            self.bursts.append(self._request)
            self.queue.append(self._request)


@pytest.fixture
def read_responder():
    """The `ReadResponder` class (a fixture, since test modules here import by path only)."""
    return ReadResponder
