"""The functional simulator, each instruction against an independent NumPy computation."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.isa import assemble
from tensorweave.sim import FunctionalSim, SimError, run_functional

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(config, text, **inputs):
    sim = FunctionalSim(config)
    result = sim.run(assemble(text, config), inputs or None)
    return sim, result


def values(a) -> str:
    return ",".join(str(int(v)) for v in np.asarray(a).ravel())


def test_load_inp_with_stride_and_padding_on_four_sides(tiny):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(12, 4))  # 12 DRAM elements of 1x4
    sim, _ = run(tiny, f"""
.tensor X input int8 12,4 init=values:{values(x)}
load.inp sram_base=3 dram_base=@X+1 y_size=2 x_size=3 x_stride=5 y_pad_0=1 y_pad_1=2 x_pad_0=2 x_pad_1=1
finish
""")
    # Independent definition: a (1+2+2) x (2+3+1) grid of elements, row-major from sram row 3.
    expected = np.zeros((5, 6, 4), dtype=np.int64)
    for y in range(2):
        for xx in range(3):
            expected[1 + y, 2 + xx] = x[1 + y * 5 + xx]
    assert np.array_equal(sim.inp[3:3 + 30, 0, :], expected.reshape(30, 4))
    assert not sim.inp[:3].any() and not sim.inp[33:].any()


def test_load_wgt_and_acc(tiny):
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, size=(3, 4, 4))
    a = rng.integers(-2**31, 2**31, size=(4, 1, 4))
    sim, _ = run(tiny, f"""
.tensor W weight int8 3,4,4 init=values:{values(w)}
.tensor B const int32 4,1,4 init=values:{values(a)}
load.wgt sram_base=5 dram_base=@W y_size=1 x_size=3 x_stride=3 x_pad_0=1
load.acc sram_base=10 dram_base=@B y_size=2 x_size=2 x_stride=2
finish
""")
    assert np.array_equal(sim.wgt[6:9], w) and not sim.wgt[5].any()
    assert np.array_equal(sim.acc[10:14], a)


def test_store_narrows_and_strides(tiny):
    acc = np.array([[[300, -129, 127, -128]], [[2**31 - 1, -2**31, 255, 1]]])
    sim, result = run(tiny, f"""
.tensor B const int32 2,1,4 init=values:{values(acc)}
.tensor C output int8 3,4
load.acc sram_base=0 dram_base=@B y_size=1 x_size=2 x_stride=2 push_next
store.out pop_prev sram_base=0 dram_base=@C y_size=2 x_size=1 x_stride=2
finish
""")
    truncated = ((acc.reshape(2, 4) + 128) % 256) - 128  # two's complement low byte
    assert np.array_equal(result.outputs["C"], np.stack([truncated[0], np.zeros(4, int), truncated[1]]))


def test_gemm_loops_and_factors(tiny):
    rng = np.random.default_rng(2)
    inp = rng.integers(-128, 128, size=(40, 1, 4))
    wgt = rng.integers(-128, 128, size=(20, 4, 4))
    uops = [(1, 0, 2), (3, 5, 0), (1, 2, 1)]  # dst, src, wgt (dst repeats: accumulates twice)
    fo = dict(dst=6, src=7, wgt=5)
    fi = dict(dst=2, src=1, wgt=3)
    iters = (3, 2)
    uop_text = "\n".join(f".uop dst={d} src={s} wgt={w}" for d, s, w in uops)
    sim, _ = run(tiny, f"""
.tensor I input int8 40,1,4 init=values:{values(inp)}
.tensor W weight int8 20,4,4 init=values:{values(wgt)}
{uop_text}
load.inp dram_base=@I y_size=1 x_size=40 x_stride=40
load.wgt dram_base=@W y_size=1 x_size=20 x_stride=20 push_next
load.uop dram_base=@uops y_size=1 x_size=3 x_stride=3
gemm reset uop_begin=0 uop_end=3 iter_out=3 iter_in=2 dst_factor_out=6 dst_factor_in=2
gemm pop_prev uop_begin=0 uop_end=3 iter_out=3 iter_in=2 dst_factor_out=6 dst_factor_in=2 src_factor_out=7 src_factor_in=1 wgt_factor_out=5 wgt_factor_in=3
finish
""")
    expected = np.zeros((64, 1, 4), dtype=np.int64)
    for i in range(iters[0]):
        for j in range(iters[1]):
            for d, s, w in uops:
                dd = d + i * fo["dst"] + j * fi["dst"]
                ss = s + i * fo["src"] + j * fi["src"]
                ww = w + i * fo["wgt"] + j * fi["wgt"]
                expected[dd, 0] += inp[ss, 0] @ wgt[ww].T
    assert np.array_equal(sim.acc, expected)


def test_gemm_wraps_at_acc_width():
    config = load_config("w4a8")  # 16-bit accumulators, 4-bit weights
    inp = np.full((1, 1, 16), -128)
    wgt = np.full((1, 16, 16), -8)
    sim, _ = run(config, f"""
.tensor I input int8 1,1,16 init=values:{values(inp)}
.tensor W weight int4 1,16,16 init=values:{values(wgt)}
.uop dst=0 src=0 wgt=0
load.inp dram_base=@I y_size=1 x_size=1 x_stride=1
load.wgt dram_base=@W y_size=1 x_size=1 x_stride=1 push_next
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev uop_begin=0 uop_end=1 iter_out=2 iter_in=1
finish
""")
    total = 2 * 16 * 128 * 8  # 32768 wraps to -32768 in 16 bits
    assert np.all(sim.acc[0] == ((total + 2**15) % 2**16) - 2**15)


def _alu_program(op: str, operand: str, acc_values: np.ndarray, iters: int = 4) -> str:
    return f"""
.tensor B const int32 8,1,4 init=values:{values(acc_values)}
.uop dst=0 src=4 wgt=0
load.acc sram_base=0 dram_base=@B y_size=1 x_size=8 x_stride=8
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
alu.{op} {operand} uop_begin=0 uop_end=1 iter_out={iters} iter_in=1 dst_factor_out=1 src_factor_out=1
finish
"""


ACC = np.array([5, -7, 2**31 - 1, -2**31, 100, -100, 3, 0, 17, -17, 1 << 20, -(1 << 20),
                2**30, 12345, -1, 64, 1, -1, 31, 32, -31, -32, 40, -40, 2, -2, 0, 7, 9, -9, 77, 2]).reshape(8, 1, 4)


def _wrap32(x):
    if isinstance(x, int):
        return (x + 2**31) % 2**32 - 2**31
    return ((np.asarray(x, dtype=object) + 2**31) % 2**32 - 2**31).astype(np.int64)


def _shift(a: int, s: int) -> int:
    if s >= 0:
        return a >> min(s, 31)
    return int(_wrap32((a << min(-s, 32)) & 0xFFFFFFFF))


def _round_shift(a: int, s: int) -> int:
    """RSHR by its definition: a / 2^s to nearest, ties to even (Fraction rounds so), for s > 0."""
    if s <= 0:
        return _shift(a, s)
    return round(Fraction(a, 2 ** min(s, 32)))


REFS = {
    "min": lambda a, b: min(a, b), "max": lambda a, b: max(a, b),
    "add": lambda a, b: int(_wrap32(a + b)), "mul": lambda a, b: int(_wrap32(a * b)), "shr": _shift,
    "rshr": _round_shift,
}


@pytest.mark.parametrize("op", sorted(REFS))
def test_alu_with_accumulator_operand(tiny, op):
    sim, _ = run(tiny, _alu_program(op, "", ACC))
    expected = ACC.copy()
    for r in range(4):
        expected[r, 0] = [REFS[op](int(a), int(b)) for a, b in zip(ACC[r, 0], ACC[r + 4, 0])]
    assert np.array_equal(sim.acc[:8], expected)


@pytest.mark.parametrize("op, imm", [("min", -3), ("max", 0), ("add", -32768), ("mul", 32767),
                                     ("shr", 3), ("shr", -4), ("shr", 40), ("shr", -40),
                                     ("rshr", 1), ("rshr", 2), ("rshr", 3), ("rshr", 6), ("rshr", 31),
                                     ("rshr", 32), ("rshr", 40), ("rshr", 0), ("rshr", -4)])
def test_alu_with_immediate(tiny, op, imm):
    sim, _ = run(tiny, _alu_program(op, f"use_imm imm={imm}", ACC))
    expected = ACC.copy()
    for r in range(4):
        expected[r, 0] = [REFS[op](int(a), imm) for a in ACC[r, 0]]
    assert np.array_equal(sim.acc[:8], expected)


def test_alu_runs_in_order_when_iterations_depend(tiny):
    """acc[r] = acc[r] + acc[r - 1] for r = 1..7 in order: a running sum."""
    text = _alu_program("add", "", ACC, iters=7).replace(".uop dst=0 src=4", ".uop dst=1 src=0")
    sim, _ = run(tiny, text)
    expected = ACC.copy()
    for r in range(1, 8):
        expected[r] = _wrap32(expected[r] + expected[r - 1])
    assert np.array_equal(sim.acc[:8], expected)


def test_alu_reset_and_gemm_reset(tiny):
    sim, _ = run(tiny, _alu_program("add", "reset", ACC))
    assert not sim.acc[:4].any() and np.array_equal(sim.acc[4:8], ACC[4:8])


def test_hand_written_gemm_relu_shift_known_result(tiny):
    program = assemble((EXAMPLES / "gemm_relu_shift.s").read_text(), tiny)
    result = run_functional(program)
    a = program.data["A"].transpose(0, 2, 1, 3).reshape(2, 8)
    w = program.data["W"].transpose(0, 2, 1, 3).reshape(8, 8)
    assert np.array_equal(np.maximum(a @ w.T, 0) >> 2, [[6, 7, 7, 7, 1, 9, 5, 5], [24, 24, 24, 24, 10, 10, 22, 30]])
    assert result.outputs["C"].reshape(2, 8).tolist() == [[6, 7, 7, 7, 1, 9, 5, 5], [24, 24, 24, 24, 10, 10, 22, 30]]
    assert dict(result.stats.insns) == {"load": 2, "compute": 6, "store": 1}
    assert result.stats.gemm_iterations == 8 and result.stats.tokens_left == {}


def test_inputs_override_initial_data(tiny):
    program = assemble((EXAMPLES / "gemm_relu_shift.s").read_text(), tiny)
    result = run_functional(program, {"A": np.zeros((2, 2, 1, 4), dtype=np.int64)})
    assert not result.outputs["C"].any()


def test_deadlock_names_instruction_and_queue(tiny):
    with pytest.raises(SimError, match=r"deadlock: compute unit at instruction 1 \(gemm\) waits to pop an empty "
                                       r"token queue load->compute"):
        run(tiny, "load.inp y_size=1 x_size=1 x_stride=1\ngemm pop_prev uop_end=0\nfinish\n")


def test_token_queue_overflow_deadlocks(tiny):
    pushes = "load.inp y_size=0 push_next\n" * (tiny.dep_queue_depth + 1)
    with pytest.raises(SimError, match=r"load unit at instruction 16 \(load\) waits to push to the full token "
                                       r"queue load->compute"):
        run(tiny, pushes + "finish\n")


def test_push_to_missing_stage(tiny):
    with pytest.raises(SimError, match="sets push_next, but the store unit has no next stage"):
        run(tiny, "store.out push_next y_size=0\nfinish\n")


def test_missing_finish(tiny):
    with pytest.raises(SimError, match="ran without a FINISH"):
        run(tiny, "load.inp y_size=0\n")


def test_leftover_tokens_reported(tiny):
    _, result = run(tiny, "load.inp y_size=0 push_next\nfinish\n")
    assert result.stats.tokens_left == {"load->compute": 1}


def test_scratchpad_overflow_named(tiny):
    with pytest.raises(SimError, match=r"instruction 0 \(load.inp\): writes INP rows 60..65, past the "
                                       r"scratchpad's 64 rows"):
        run(tiny, ".tensor X input int8 6,4\nload.inp sram_base=60 dram_base=@X y_size=1 x_size=6 x_stride=6\nfinish\n")


def test_gemm_index_out_of_range_named(tiny):
    with pytest.raises(SimError, match=r"instruction 1 \(gemm\): accumulator index 64 is past"):
        run(tiny, ".uop dst=60 src=0 wgt=0\nload.uop dram_base=@uops y_size=1 x_size=1 x_stride=1\n"
                  "gemm uop_end=1 iter_out=2 iter_in=1 dst_factor_out=4\nfinish\n")


def test_dram_out_of_range_named(tiny):
    with pytest.raises(SimError, match="instruction 0: DRAM bytes .* are outside the program's"):
        run(tiny, "load.inp dram_base=100000 y_size=1 x_size=1 x_stride=1\nfinish\n")


def test_alu_op_missing_from_config():
    config = load_config("w4a8")
    with pytest.raises(SimError, match=r"ALU operation MUL is not in config 'w4a8' \(alu_ops: MIN, MAX, ADD, SHR, RSHR\)"):
        run(config, "alu.mul uop_end=0\nfinish\n")


def test_store_from_wrong_memory(tiny):
    with pytest.raises(SimError, match="STORE must use memory_id OUT, not INP"):
        run(tiny, "store.inp y_size=0\nfinish\n")


def test_program_for_other_config_refused(tiny):
    program = assemble("finish\n", tiny)
    with pytest.raises(SimError, match="built for config 'tiny'"):
        FunctionalSim(load_config("vta-default")).run(program)


def test_a_reused_simulator_starts_from_clean_scratchpads(tiny):
    """Scratchpads are zero at the start of every run: a program reading rows it never wrote (here a STORE
    of accumulator rows) gives the same outputs after an earlier program as on a fresh simulator."""
    leftover_reader = assemble(".tensor C output int8 4,1,4\n"
                               "store.out sram_base=0 dram_base=@C y_size=1 x_size=4 x_stride=4\nfinish\n", tiny)
    fresh = FunctionalSim(tiny).run(leftover_reader)
    assert not fresh.outputs["C"].any()
    sim = FunctionalSim(tiny)
    sim.run(assemble((EXAMPLES / "gemm_relu_shift.s").read_text(), tiny))
    assert sim.acc[:4].any()                              # the first program left accumulators behind
    again = sim.run(leftover_reader)
    np.testing.assert_array_equal(again.outputs["C"], fresh.outputs["C"])
    assert not sim.acc.any() and not sim.inp.any() and not sim.wgt.any()
