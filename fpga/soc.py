"""SoC tops around the accelerator for boards without a hard CPU (ECP5).

`UARTSoC` is the accelerator (or any component with its ports), an on-chip DRAM model in block RAM
at DRAM address 0 (`fpga.memory.AXI4Memory`) and a UART bridge (`fpga.uart`) that reaches both the
register interface and the DRAM model from the host; its own ports are `rx`, `tx` and `leds`
(bit 0 irq, bit 1 heartbeat). `BoardTop` requests the board's clock, serial port and LEDs and
instantiates it. On Zynq boards the processing system plays these roles instead (`fpga.vivado`).
"""


from amaranth import Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from .memory import AXI4Memory
from .uart import UARTBridge

DEFAULT_DRAM_BYTES = 64 * 1024
BAUD = 115_200


class UARTSoC(wiring.Component):
    rx: In(1, init=1)
    tx: Out(1, init=1)
    leds: Out(8)

    def __init__(self, accelerator: wiring.Component, bus_width: int, clock_hz: float,
                 dram_bytes: int = DEFAULT_DRAM_BYTES, baud: int = BAUD, dram_init: bytes = b""):
        self.accelerator = accelerator
        self.dram_bytes = dram_bytes
        self.divisor = round(clock_hz / baud)
        self._bus_width = bus_width
        self._dram_init = dram_init
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accelerator = accelerator = self.accelerator
        m.submodules.dram = dram = AXI4Memory(self.dram_bytes, self._bus_width, self._dram_init)
        m.submodules.bridge = bridge = UARTBridge(self.divisor)
        wiring.connect(m, accelerator.dram, dram.bus)
        wiring.connect(m, bridge.ctrl, accelerator.ctrl)
        m.d.comb += [
            dram.host_addr.eq(bridge.host_addr), dram.host_wdata.eq(bridge.host_wdata),
            dram.host_write.eq(bridge.host_write), dram.host_read.eq(bridge.host_read),
            bridge.host_rdata.eq(dram.host_rdata), bridge.host_done.eq(dram.host_done),
            bridge.rx.eq(self.rx), self.tx.eq(bridge.tx),
        ]
        heartbeat = Signal(24)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += [self.leds[0].eq(accelerator.irq), self.leds[1].eq(heartbeat[-1])]
        return m


class BoardTop(Elaboratable):
    """The SoC on a board: its default clock, serial port 0 and the first LEDs."""

    def __init__(self, soc: UARTSoC):
        self.soc = soc

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.soc = soc = self.soc
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [soc.rx.eq(rx.i), tx.o.eq(soc.tx)]
        for index in range(2):
            m.submodules[f"led_{index}"] = led = io.Buffer("o", platform.request("led", index, dir="-"))
            m.d.comb += led.o.eq(soc.leds[index])
        return m
