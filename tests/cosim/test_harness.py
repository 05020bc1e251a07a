"""The C++ harness, its AXI4 DRAM model and AXI4-Lite driver, and the cocotb path, on a small stand-in design."""

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.cosim import HarnessJob, RTLError, RTLTimeout, run_harness
from tensorweave.cosim.engine import DRAM_BASE, HarnessResult, to_run_result, watchdog_report
from tensorweave.isa import assemble

pytestmark = pytest.mark.cosim

ECHO_DIGEST = 0x1234ABCD


def _image(words: int, seed: int = 0) -> bytes:
    return bytes(np.random.default_rng(seed).integers(0, 256, 16 * words, dtype=np.uint8))



def test_echo_runs_and_reports_cycles_and_registers(echo_harness):
    image = _image(8)
    jobs = [HarnessJob(image, 8, 10_000), HarnessJob(image, 8, 10_000, stall_percent=40, seed=5)]
    plain, stalled = run_harness(echo_harness.executable, jobs)
    want = bytearray(image)
    src = np.frombuffer(image, np.uint8)
    want[64:128] = (255 - src[:64]).tobytes()
    for result in (plain, stalled):
        assert result.status == "done"
        assert result.dram == bytes(want)
        assert result.digest == ECHO_DIGEST
        assert result.violations == 0
        assert result.pcs[0] == 8  # the stand-in shows its word index as LOAD_PC
    # 8 words x (AR, R, AW, W, B) handshakes plus the FSM start: the cycle count is the design's, exactly.
    assert plain.cycles == 41
    assert stalled.cycles > plain.cycles  # random ready/valid stalls cost cycles, never data


def test_error_registers_come_back(echo_harness):
    (result,) = run_harness(echo_harness.executable, [HarnessJob(_image(2), 0, 1_000)])
    assert (result.status, result.error_code, result.error_insn) == ("error", 1, 0)


def test_watchdog_stops_a_run_and_reports_where_units_are(echo_harness):
    (result,) = run_harness(echo_harness.executable, [HarnessJob(_image(64), 1000, 200)])
    assert result.status == "timeout"
    assert 0 < result.pcs[0] < 1000
    assert f"load unit at instruction {result.pcs[0]}" in watchdog_report(result)


def test_many_jobs_in_one_process_keep_their_own_memories(echo_harness):
    jobs = [HarnessJob(_image(4, seed), 4, 5_000) for seed in range(20)]
    results = run_harness(echo_harness.executable, jobs)
    for job, result in zip(jobs, results):
        assert result.dram[32:64] == bytes(255 - b for b in job.image[:32])


def _result(status: str, code: int = 0, insn: int = 0, pcs=(0, 0, 0), units: int = 0) -> HarnessResult:
    config = load_config("tiny")
    return HarnessResult(status, 10, code, insn, pcs, units, int(config.digest[:8], 16), 20, 0, b"")


def test_hardware_errors_become_tensorweave_errors_naming_the_instruction():
    program = assemble("load.inp sram_base=0 dram_base=0 y_size=1 x_size=1 x_stride=1\nfinish\n", load_config("tiny"))
    with pytest.raises(RTLError, match=r"error 3 \(scratchpad address out of range\) at instruction 0 \(load.inp"):
        to_run_result(program, _result("error", 3, 0))
    with pytest.raises(RTLTimeout, match=r"compute unit at instruction 1 \(finish\): busy, waiting for a token"):
        to_run_result(program, _result("timeout", pcs=(0, 1, 0), units=0b011 << 3))
    with pytest.raises(RTLError, match="config digest"):
        to_run_result(program, HarnessResult("done", 1, 0, 0, (0, 0, 0), 0, 0xDEAD, 2, 0, b""))


def test_cocotb_path_matches_the_harness(echo_verilog, echo_harness):
    from tensorweave.cosim.cocotb_runner import run_cocotb_raw

    program = assemble(".tensor x input int8 64 init=random:3\n" + "finish\n" * 6, load_config("tiny"))
    (fast,) = run_harness(echo_harness.executable, [HarnessJob(bytes(program.dram_image()), 6, 10_000)])
    slow = run_cocotb_raw(echo_verilog, program)
    assert (slow.status, slow.cycles, slow.dram) == (fast.status, fast.cycles, fast.dram)
    stalled = run_cocotb_raw(echo_verilog, program, stall_percent=30)
    assert stalled.dram == fast.dram and stalled.cycles > fast.cycles
    assert DRAM_BASE % 4096 == 0
