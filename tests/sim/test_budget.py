"""Budgets: a valid program that declares more micro-op iterations than the budget stops at once,
naming the unit and the instruction, on the functional simulator, the cycle model and their engines."""

import time

import pytest
from tensorweave.contract.engine import DEFAULT_BUDGET, EngineError, get_cost_model, get_engine
from tensorweave.isa import assemble, build_isa
from tensorweave.sim import FunctionalSim, SimError, run_functional
from tensorweave.sim.cycle import CycleModelError, estimate_cycles


def bomb(config) -> str:
    """Nine valid instructions, every loop at the ISA's maximum trip counts over the whole micro-op buffer:
    about 3 x 10^10 micro-op iterations each (minutes to hours before budgets existed)."""
    isa = build_isa(config)
    most = (1 << isa.widths["loop_iter"]) - 1
    uops = config.uop_depth
    loop = f"uop_begin=0 uop_end={uops} iter_out={most} iter_in={most}"
    return "\n".join([*(".uop dst=0 src=0 wgt=0" for _ in range(uops)),
                      f"load.uop sram_base=0 dram_base=@uops y_size=1 x_size={uops} x_stride={uops}",
                      f"gemm reset {loop}", f"gemm {loop}", f"alu.add {loop}", f"alu.max use_imm imm=0 {loop}",
                      f"gemm {loop}", f"alu.add {loop}", f"gemm {loop}", "finish"]) + "\n"


def test_maximal_loops_stop_fast_naming_unit_and_instruction(tiny):
    program = assemble(bomb(tiny), tiny)
    assert len(program.insns) == 9
    start = time.perf_counter()
    with pytest.raises(SimError, match=r"budget exceeded: instruction 1 \(gemm\) in the compute unit .*"
                                       r"past the budget of 1,073,741,824"):
        run_functional(program)
    with pytest.raises(CycleModelError, match=r"instruction 1 \(gemm\) in the compute unit"):
        estimate_cycles(program)
    assert time.perf_counter() - start < 2


def test_budget_counts_every_loop_and_stops_before_the_instruction_that_passes_it(tiny):
    text = """
.uop dst=0 src=0 wgt=0
.uop dst=1 src=0 wgt=0
.tensor O output int8 1,2,1,4
load.uop sram_base=0 dram_base=@uops y_size=1 x_size=2 x_stride=2
alu.add use_imm imm=3 uop_begin=0 uop_end=2 iter_out=2 iter_in=3
alu.add use_imm imm=5 uop_begin=0 uop_end=1 iter_out=1 iter_in=1
store.out sram_base=0 dram_base=@O y_size=1 x_size=2 x_stride=2
finish
"""
    program = assemble(text, tiny)
    # 12 + 1 iterations: a budget of 13 runs it, 12 stops before instruction 2 (nothing of it runs).
    full = run_functional(program, budget=13)
    assert full.stats.alu_iterations == 13
    assert full.outputs["O"][0, :, 0, 0].tolist() == [3 * 6 + 5, 3 * 6]
    sim = FunctionalSim(tiny, budget=12)
    with pytest.raises(SimError, match=r"instruction 2 \(alu\) in the compute unit would bring the run to 13 "):
        sim.run(program)
    assert sim.acc[0, 0, 0] == 3 * 6 and sim.stats.alu_iterations == 12
    assert estimate_cycles(program, budget=13).alu_iterations == 13
    with pytest.raises(CycleModelError, match=r"instruction 2 \(alu\) .* budget of 12"):
        estimate_cycles(program, budget=12)


def test_engines_take_the_budget_option(tiny):
    program = assemble(bomb(tiny), tiny)
    small = assemble(".tensor O output int8 1,1,1,4\nalu.add use_imm imm=1 uop_begin=0 uop_end=1 iter_out=3 "
                     "iter_in=1\nstore.out sram_base=0 dram_base=@O y_size=1 x_size=1 x_stride=1\nfinish\n", tiny)
    for name in ("functional", "cycle"):
        with pytest.raises(SimError, match="budget of 1,073,741,824"):
            get_engine(name).run(program)
        with pytest.raises(SimError, match="budget of 2"):
            get_engine(name, budget=2).run(small)
        assert get_engine(name, budget=3).run(small).outputs["O"].ravel()[0] == 3  # the zero micro-op: acc[0] += 1, 3 times
    with pytest.raises(CycleModelError, match="budget of 2"):
        get_cost_model("cycle", budget=2).estimate(small)
    assert get_cost_model("cycle", budget=3).estimate(small).cycles > 0
    with pytest.raises(EngineError, match="budget must be a positive number"):
        get_engine("functional", budget=0)
    with pytest.raises(EngineError, match="does not take the option"):
        get_engine("functional", colour="red")


def test_default_budget_is_far_above_resnet18():
    """The reference: ResNet-18's biggest layer program (0.5 M iterations on vta-default; 7.4 M on tiny,
    measured once, too slow to build here)."""
    from tensorweave.configs import load_config
    from tensorweave.contract.engine import loop_iterations
    from tensorweave.dse.workloads import NAMED_WORKLOADS, layer_program

    config = load_config("vta-default")
    isa = build_isa(config)
    biggest = max(sum(loop_iterations(isa.decode(w)) for w in layer_program(config, layer).insns)
                  for layer in NAMED_WORKLOADS["resnet18"])
    assert 400_000 < biggest < DEFAULT_BUDGET // 1000


def test_large_loop_within_budget_runs_chunk_by_chunk(tiny):
    """A loop of 2^26 micro-ops (index arrays of 1.5 GiB if built at once) is walked in chunks, in order."""
    program = assemble("alu.max use_imm imm=0 uop_begin=0 uop_end=1 iter_out=8192 iter_in=8192 dst_factor_in=1\n"
                       "finish\n", tiny)
    insn = build_isa(tiny).decode(program.insns[0])
    sizes, heads = 0, []
    for chunk in FunctionalSim(tiny)._loop_chunks(0, insn):
        assert chunk["dst"].size <= 1 << 15
        sizes += chunk["dst"].size
        heads.append(int(chunk["dst"][0]))
    assert sizes == 8192 * 8192 and heads[:3] == [0, 0, 0]  # each chunk starts a new outer iteration: j = 0
