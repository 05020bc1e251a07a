"""The ECP5 SoC (UART bridge + BRAM DRAM model) in the Amaranth simulator, with the demo design inside."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from tensorweave.fpga.demo import DIGEST, DotDemo
from tensorweave.fpga.soc import UARTSoC

DIVISOR = 4  # clock cycles per UART bit, to keep the simulation short


class UARTHost:
    """Drives `rx` and samples `tx` of a UARTSoC at DIVISOR cycles per bit."""

    def __init__(self, ctx, soc: UARTSoC):
        self.ctx, self.soc = ctx, soc

    async def send(self, data: bytes) -> None:
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.ctx.set(self.soc.rx, bit)
                await self.ctx.tick().repeat(DIVISOR)

    async def receive(self, count: int) -> bytes:
        out = bytearray()
        for _ in range(count):
            for _ in range(400):
                if not self.ctx.get(self.soc.tx):
                    break
                await self.ctx.tick()
            else:
                raise AssertionError("no start bit from the SoC")
            await self.ctx.tick().repeat(DIVISOR + DIVISOR // 2)
            value = 0
            for i in range(8):
                value |= self.ctx.get(self.soc.tx) << i
                await self.ctx.tick().repeat(DIVISOR)
            out.append(value)
        return bytes(out)

    async def write_reg(self, offset: int, value: int) -> None:
        await self.send(b"w" + bytes([offset]) + value.to_bytes(4, "little"))
        assert await self.receive(1) == b"k"

    async def read_reg(self, offset: int) -> int:
        await self.send(b"r" + bytes([offset]))
        return int.from_bytes(await self.receive(4), "little")

    async def write_dram(self, address: int, value: int) -> None:
        await self.send(b"W" + address.to_bytes(4, "little") + value.to_bytes(4, "little"))
        assert await self.receive(1) == b"k"

    async def read_dram(self, address: int) -> int:
        await self.send(b"R" + address.to_bytes(4, "little"))
        return int.from_bytes(await self.receive(4), "little")


def test_uart_soc_runs_the_demo_through_registers_and_dram():
    soc = UARTSoC(DotDemo(64), 64, clock_hz=DIVISOR * 115_200, dram_bytes=1024)
    pairs = [(3, -7), (-1200, 45), (32767, -32768)]
    expected = sum(a * b for a, b in pairs) & 0xFFFF_FFFF
    seen: dict[str, int] = {}

    async def testbench(ctx):
        host = UARTHost(ctx, soc)
        ctx.set(soc.rx, 1)
        await ctx.tick().repeat(4)
        for i, (a, b) in enumerate(pairs):
            await host.write_dram(0x100 + 8 * i, (a & 0xFFFF) | ((b & 0xFFFF) << 16))
            await host.write_dram(0x100 + 8 * i + 4, 0xDEADBEEF)   # upper half of the bus word: ignored
        seen["word"] = await host.read_dram(0x100 + 4)
        seen["digest"] = await host.read_reg(0x24)
        await host.write_reg(0x08, len(pairs))
        await host.write_reg(0x0C, 0x100)
        await host.write_reg(0x00, 1)
        for _ in range(50):
            if await host.read_reg(0x04) & 2:
                break
        seen["status"] = await host.read_reg(0x04)
        seen["irq_led"] = ctx.get(soc.leds[0])
        seen["result"] = await host.read_dram(0x100 + 8 * len(pairs))
        seen["result_high"] = await host.read_dram(0x100 + 8 * len(pairs) + 4)
        seen["cycles"] = await host.read_reg(0x14)

    sim = Simulator(soc)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["word"] == 0xDEADBEEF
    assert seen["digest"] == DIGEST
    assert seen["status"] == 0b10
    assert seen["irq_led"] == 1
    assert seen["result"] == expected
    assert seen["result_high"] == 0
    assert 2 * len(pairs) < seen["cycles"] < 40


class SimulatedUARTPort:
    """A pyserial-like port into a UARTSoC in the Amaranth simulator: `write` queues bytes onto `rx`,
    `read` steps the simulation until the SoC has sent that many bytes on `tx`."""

    def __init__(self, soc: UARTSoC, max_steps: int = 2_000_000):
        from collections import deque
        self.outgoing: deque[int] = deque()
        self.incoming: deque[int] = deque()
        self.max_steps = max_steps
        self.sim = Simulator(soc)
        self.sim.add_clock(1e-6)

        async def driver(ctx):
            ctx.set(soc.rx, 1)
            while True:
                if not self.outgoing:
                    await ctx.tick()
                    continue
                byte = self.outgoing.popleft()
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(soc.rx, bit)
                    await ctx.tick().repeat(DIVISOR)

        async def monitor(ctx):
            while True:
                if ctx.get(soc.tx):
                    await ctx.tick()
                    continue
                await ctx.tick().repeat(DIVISOR + DIVISOR // 2)
                value = 0
                for i in range(8):
                    value |= ctx.get(soc.tx) << i
                    await ctx.tick().repeat(DIVISOR)
                self.incoming.append(value)

        self.sim.add_testbench(driver, background=True)
        self.sim.add_testbench(monitor, background=True)

    def write(self, data: bytes) -> None:
        self.outgoing.extend(data)

    def read(self, count: int) -> bytes:
        for _ in range(self.max_steps):
            if len(self.incoming) >= count:
                break
            self.sim.advance()
        return bytes(self.incoming.popleft() for _ in range(min(count, len(self.incoming))))


@pytest.mark.slow
def test_board_driver_runs_a_gemm_through_the_uart_soc_with_the_accelerator():
    """The ECP5 SoC end to end with the real accelerator: UART bridge, BRAM DRAM model, AXI bursts."""
    import numpy as np
    from tensorweave.configs import load_config
    from tensorweave.fpga.runtime import BoardDevice, UARTBus
    from tensorweave.hw import top as hw_top
    from tensorweave.isa import assemble
    from tensorweave.sim import run_functional
    from tensorweave.sim.programs import blocked_gemm

    tiny = load_config("tiny")
    soc = UARTSoC(hw_top.Accelerator(tiny), tiny.bus_width, clock_hz=DIVISOR * 115_200, dram_bytes=2048)
    device = BoardDevice(UARTBus(SimulatedUARTPort(soc), dram_bytes=2048, bus_bytes=tiny.bus_bytes), tiny,
                         timeout_s=300)
    program = assemble(blocked_gemm(tiny, 4, 4, 4, shift=2), tiny)
    rng = np.random.default_rng(3)
    inputs = {t.name: rng.integers(-128, 128, size=t.shape).astype(t.dtype) for t in program.inputs}
    expected = run_functional(program, inputs)
    got = device.run(program, inputs)
    for name, value in expected.outputs.items():
        np.testing.assert_array_equal(got.outputs[name], value)
    assert got.registers["STATUS"] == 0b010 and got.cycles > 10
