"""A UART (8N1) and a UART bridge to the accelerator's registers and the on-chip DRAM model.

Boards without a hard CPU reach the register interface over the board's USB serial port. Frames
(multi-byte values little-endian), each answered by the bridge:

| request | bytes | answer |
|---|---|---|
| register write | `w`, offset (1), value (4) | `k` |
| register read  | `r`, offset (1) | value (4) |
| DRAM word write | `W`, byte address (4), value (4) | `k` |
| DRAM word read  | `R`, byte address (4) | value (4) |

`fpga.runtime.UARTBus` speaks this protocol from the host.
"""


from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.axi import AXI4LiteSignature


class UARTRx(wiring.Component):
    """Receives 8N1 bytes; `valid` is high for one cycle with each byte in `data`."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4 clock cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        rx = Signal(init=1)
        m.d.sync += rx.eq(self.rx)  # one synchronizer stage (plus the IO register)
        timer = Signal(range(2 * self._divisor))
        bit = Signal(range(10))
        shift = Signal(8)
        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(self._divisor // 2), bit.eq(0)]
                    m.next = "receive"
            with m.State("receive"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self._divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 0):
                        with m.If(rx):       # a glitch, not a start bit
                            m.next = "idle"
                    with m.Elif(bit <= 8):
                        m.d.sync += shift.eq((shift >> 1) | (rx << 7))
                    with m.Else():
                        m.d.comb += [self.valid.eq(rx)]
                        m.next = "idle"
        m.d.comb += self.data.eq(shift)
        return m


class UARTTx(wiring.Component):
    """Sends `data` as one 8N1 byte when `valid` and `ready` are both high."""

    tx: Out(1, init=1)
    data: In(8)
    valid: In(1)
    ready: Out(1)

    def __init__(self, divisor: int):
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self._divisor))
        bits = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(bits[0])]
        with m.If(left == 0):
            with m.If(self.valid):
                m.d.sync += [bits.eq((1 << 9) | (self.data << 1)), left.eq(10), timer.eq(self._divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [bits.eq((bits >> 1) | (1 << 9)), left.eq(left - 1), timer.eq(self._divisor - 1)]
        return m


class UARTBridge(wiring.Component):
    """Serves the frames above: an AXI4-Lite master to the registers and the DRAM model's host port."""

    def __init__(self, divisor: int):
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "ctrl": Out(AXI4LiteSignature(8, 32)),
            "host_addr": Out(32), "host_wdata": Out(32), "host_write": Out(1), "host_read": Out(1),
            "host_rdata": In(32), "host_done": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.receiver = receiver = UARTRx(self._divisor)
        m.submodules.sender = sender = UARTTx(self._divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(sender.tx)]

        command = Signal(8)
        address, value = Signal(32), Signal(32)
        count = Signal(range(9))     # bytes still to receive / send
        address_sent, data_sent = Signal(), Signal()
        is_write = command.matches(ord("w"), ord("W"))
        is_dram = command.matches(ord("W"), ord("R"))
        ctrl = self.ctrl
        m.d.comb += [ctrl.wstrb.eq(0b1111), ctrl.awaddr.eq(address), ctrl.araddr.eq(address),
                     ctrl.wdata.eq(value), self.host_addr.eq(address), self.host_wdata.eq(value)]
        with m.FSM():
            with m.State("command"):
                with m.If(receiver.valid & receiver.data.matches(*map(ord, "wrWR"))):
                    m.d.sync += [command.eq(receiver.data), address.eq(0), value.eq(0)]
                    wide = receiver.data.matches(ord("W"), ord("R"))
                    writes = receiver.data.matches(ord("w"), ord("W"))
                    m.d.sync += count.eq((wide.as_unsigned() * 3 + 1) + writes.as_unsigned() * 4)
                    m.next = "receive"
            with m.State("receive"):
                with m.If(count == 0):
                    m.next = "execute"
                with m.Elif(receiver.valid):
                    # Address bytes then value bytes, each little-endian: shift both through.
                    address_bytes = (is_dram.as_unsigned() * 3 + 1)
                    with m.If(count > 4 * is_write.as_unsigned()):
                        with m.If(address_bytes == 1):
                            m.d.sync += address.eq(receiver.data)
                        with m.Else():
                            m.d.sync += address.eq((address >> 8) | (receiver.data << 24))
                    with m.Else():
                        m.d.sync += value.eq((value >> 8) | (receiver.data << 24))
                    m.d.sync += count.eq(count - 1)
            with m.State("execute"):
                with m.If(is_dram):
                    m.d.comb += [self.host_write.eq(is_write), self.host_read.eq(~is_write)]
                    with m.If(self.host_done):
                        m.d.sync += value.eq(self.host_rdata)
                        m.next = "reply"
                with m.Elif(is_write):
                    # The slave may take the address and the data in different cycles.
                    m.d.comb += [ctrl.awvalid.eq(~address_sent), ctrl.wvalid.eq(~data_sent)]
                    with m.If(ctrl.awready):
                        m.d.sync += address_sent.eq(1)
                    with m.If(ctrl.wready):
                        m.d.sync += data_sent.eq(1)
                    with m.If((address_sent | ctrl.awready) & (data_sent | ctrl.wready)):
                        m.d.sync += [address_sent.eq(0), data_sent.eq(0)]
                        m.next = "write_response"
                with m.Else():
                    m.d.comb += ctrl.arvalid.eq(1)
                    with m.If(ctrl.arready):
                        m.next = "read_data"
            with m.State("write_response"):
                m.d.comb += ctrl.bready.eq(1)
                with m.If(ctrl.bvalid):
                    m.next = "reply"
            with m.State("read_data"):
                m.d.comb += ctrl.rready.eq(1)
                with m.If(ctrl.rvalid):
                    m.d.sync += value.eq(ctrl.rdata)
                    m.next = "reply"
            with m.State("reply"):
                with m.If(is_write):
                    m.d.sync += [value.eq(ord("k")), count.eq(1)]
                with m.Else():
                    m.d.sync += count.eq(4)
                m.next = "send"
            with m.State("send"):
                m.d.comb += [sender.data.eq(value[:8]), sender.valid.eq(count != 0)]
                with m.If(count == 0):
                    m.next = "command"
                with m.Elif(sender.ready):
                    m.d.sync += [value.eq(value >> 8), count.eq(count - 1)]
        return m
