"""Error codes: one table, and every runtime names each code from it (error 9 on a board included)."""

import pytest
from tensorweave.configs import load_config
from tensorweave.contract import error_codes
from tensorweave.contract.error_codes import CODE_WIDTH, DEADLOCK, ERROR_CODES, message
from tensorweave.isa import assemble


def test_codes_are_numbered_from_zero_with_unique_names():
    assert [e.code for e in ERROR_CODES] == list(range(10))
    assert len({e.name for e in ERROR_CODES}) == len({e.message for e in ERROR_CODES}) == 10
    assert all(getattr(error_codes, e.name) == e.code for e in ERROR_CODES)
    assert CODE_WIDTH == 4
    assert message(9) == "deadlock: every unit waits on a token or a command that cannot come"
    assert message(12) == "unknown error code 12"


def test_board_runtime_names_a_deadlock():
    """A deadlocked program on the board driver (the RTL behind `SimulatedBus`) is reported as error 9
    with its message; before the contract, the runtime's own table lacked code 9 ("unknown")."""
    from tensorweave.fpga.runtime import BoardDevice, DeviceError, SimulatedBus

    tiny = load_config("tiny")
    device = BoardDevice(SimulatedBus(tiny, dram_bytes=1 << 14), tiny, timeout_s=60)
    program = assemble("store.out pop_prev dram_base=0 y_size=1 x_size=1 x_stride=1\nfinish\n", tiny)
    with pytest.raises(DeviceError, match=r"error 9 \(deadlock: every unit waits on a token or a command that "
                                          r"cannot come\) at instruction 0 \(store.out"):
        device.run(program)


def test_rtl_engine_names_every_code():
    from tensorweave.cosim.engine import HarnessResult, RTLError, to_run_result

    tiny = load_config("tiny")
    program = assemble("store.out pop_prev dram_base=0 y_size=1 x_size=1 x_stride=1\nfinish\n", tiny)
    for e in ERROR_CODES[1:]:
        result = HarnessResult("error", 10, e.code, 0, (0, 0, 0), 0, 0, 0, 0, bytes(len(program.dram_image())))
        with pytest.raises(RTLError) as info:
            to_run_result(program, result, check_digest=False)
        assert f"error {e.code} ({e.message})" in str(info.value)
        assert ("store unit at instruction 0" in str(info.value)) == (e.code == DEADLOCK)

