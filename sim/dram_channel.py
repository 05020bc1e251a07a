"""The cycle model's DRAM read channel (`sim/cycle.py`): the arbiter and read DMAs of `hw/arbiter.py` and
`hw/dma.py`, burst by burst. `BurstChannel` takes each read port's pending transfer (a `Reader`) as it
arrives and projects when every transfer's consumer is done."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["BOUNDARY_BYTES", "BURST_MAX_BEATS", "MAX_OUTSTANDING", "READERS", "READER_UNIT", "BurstChannel", "Reader"]

READERS = {"fetch": 0, "UOP": 1, "ACC": 2, "INP": 3, "WGT": 4}   # the arbiter's reader ports (hw/top.py)
READER_UNIT = {"UOP": "compute", "ACC": "compute", "INP": "load", "WGT": "load"}
MAX_OUTSTANDING = 8                                              # the arbiter's outstanding-burst FIFO
BURST_MAX_BEATS, BOUNDARY_BYTES = 256, 4096


@dataclass
class Reader:
    """One read port's pending transfer: bursts (R-channel cycles, consumer cycles, consumer gap after)."""

    bursts: list[tuple[int, int, int]]
    next: int          # the next burst to request
    ready: int         # earliest cycle its next AR can be granted
    consumer: int      # earliest cycle its consumer takes the next beat
    tail: int          # consumer cycles after the last beat (trailing padding)
    latency: int       # from a grant to the burst's first beat
    done: int = -1     # when the consumer is done (fetch: its burst's first beat), once every burst is granted
    owner: int = -1    # the LOAD's instruction index (-1: fetch)

    def copy(self) -> Reader:
        return Reader(self.bursts, self.next, self.ready, self.consumer, self.tail, self.latency, self.done,
                       self.owner)


class BurstChannel:
    """The DRAM read channel as the RTL has it (`hw/arbiter.py`, `hw/dma.py`): each reader requests
    whole bursts (a DMA one per DRAM row, split at 256 beats and 4 KiB; fetch one per 4 instructions);
    the arbiter grants one burst every `ar_spacing` cycles round-robin among the requesting readers,
    at most `MAX_OUTSTANDING` bursts in flight; R beats come back in grant order, back to back while
    the head burst's consumer takes them, from the reader's `latency` after the grant. A DMA consumer
    takes one beat (or one sub-beat element) per cycle and writes padding elements in between."""

    def __init__(self, ar_spacing: int):
        self.ar_spacing = ar_spacing
        self.readers: dict[str, Reader] = {}
        self.now = 0
        self.next_grant = 0
        self.last = 0
        self.r_free = 0
        self.outstanding: deque[int] = deque()   # when each granted burst's FIFO entry frees, in order

    def arrive(self, key: str, now: int, reader: Reader) -> dict[str, tuple[int, int]]:
        """Commit every grant before `now`, add `reader`'s transfer; returns each transfer's projected
        consumer end (fetch: its burst's first beat) assuming nothing else arrives, with its owner."""
        self.now = now = max(now, self.now)
        self._run(self.readers, now, commit=True)
        self.readers[key] = reader
        return self.projection()

    def projection(self) -> dict[str, tuple[int, int]]:
        readers = {k: r.copy() for k, r in self.readers.items()}
        saved = (self.next_grant, self.last, self.r_free, deque(self.outstanding))
        self._run(readers, None, commit=False)
        self.next_grant, self.last, self.r_free, self.outstanding = saved
        return {k: (r.owner, r.done) for k, r in readers.items()}

    def _run(self, readers: dict[str, Reader], limit: int | None, commit: bool) -> None:
        waiting = {k: r for k, r in readers.items() if r.next < len(r.bursts)}
        outstanding = self.outstanding
        while waiting:
            g = max(self.next_grant, min(r.ready for r in waiting.values()))
            if len(outstanding) >= MAX_OUTSTANDING:
                g = max(g, outstanding[-MAX_OUTSTANDING])
            if limit is not None and g >= limit:
                break
            while outstanding and outstanding[0] <= g:
                outstanding.popleft()
            key = min((k for k, r in waiting.items() if r.ready <= g),
                      key=lambda k: (READERS[k] - self.last - 1) % len(READERS))
            r = waiting[key]
            occupancy, consume, gap = r.bursts[r.next]
            r.next += 1
            start = max(g + r.latency, self.r_free, r.consumer)
            self.r_free = start + occupancy
            r.consumer = start + consume + gap
            outstanding.append(self.r_free)
            self.next_grant = g + self.ar_spacing
            self.last = READERS[key]
            r.ready = g + self.ar_spacing
            if r.next == len(r.bursts):
                r.done = (start if key == "fetch" else r.consumer + r.tail)
                del waiting[key]
        if commit:
            for k in [k for k, r in readers.items() if r.next == len(r.bursts)]:
                del readers[k]
