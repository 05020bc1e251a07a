"""The random program generator: valid (runs, race-free, initialised reads), reproducible, and covering."""

from collections import Counter

import pytest
from tensorweave.configs import load_config
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.programs import blocked_gemm
from tensorweave.sim.random_programs import coverage, find_races, random_program, random_program_text

PRESETS = ("tiny", "vta-default", "batch2-32x32", "w4a8")


@pytest.mark.parametrize("preset", PRESETS)
def test_many_seeds_run_race_free_and_cover_everything(preset):
    config = load_config(preset)
    seen = Counter()
    for seed in range(120 if preset == "tiny" else 40):
        program = random_program(config, seed)
        assert find_races(program) == [], f"seed {seed}"
        result = run_functional(program)
        assert result.stats.tokens_left == {}, f"seed {seed} leaves tokens behind"
        seen += coverage(program)
    wanted = {f"op.{op}" for op in ("LOAD", "STORE", "GEMM", "ALU", "FINISH")}
    wanted |= {f"load.{m}" for m in ("INP", "WGT", "ACC", "UOP")} | {"store.OUT"}
    wanted |= {f"pad.{m}" for m in ("INP", "WGT", "ACC")} | {f"stride.{m}" for m in ("INP", "WGT", "UOP", "OUT")}
    wanted |= {f"alu.{op}.{kind}" for op in config.alu_ops for kind in ("imm", "acc")}
    wanted |= {"reset.GEMM", "reset.ALU"}
    wanted |= {f"token.load.{f}" for f in ("pop_next", "push_next")}
    wanted |= {f"token.compute.{f}" for f in ("pop_prev", "pop_next", "push_prev", "push_next")}
    wanted |= {f"token.store.{f}" for f in ("pop_prev", "push_prev")}
    missing = sorted(k for k in wanted if seen[k] == 0)
    assert not missing, f"never generated: {missing}"
    assert not any(k.startswith("alu.") and k.split(".")[1] not in config.alu_ops for k in seen)


def test_same_seed_same_program_and_different_seeds_differ(tiny):
    assert random_program(tiny, 7).insns == random_program(tiny, 7).insns
    assert random_program_text(tiny, 7) != random_program_text(tiny, 8)


def test_outputs_are_not_trivially_zero(tiny):
    nonzero = sum(int(run_functional(random_program(tiny, s)).outputs["out"].any()) for s in range(20))
    assert nonzero >= 18


def test_race_checker_accepts_the_blocked_gemm_example(tiny):
    assert find_races(assemble(blocked_gemm(tiny, 4, 8, 8), tiny)) == []


def test_race_checker_catches_a_missing_token(tiny):
    """Rule: dropping the store's pop_prev lets it read accumulators compute may still be writing."""
    text = random_program_text(tiny, 3, phases=1)
    broken = text.replace(" pop_prev", "", text.count(" pop_prev"))  # drop every pop_prev
    races = find_races(assemble(broken.replace("finish pop_next", "finish"), tiny))
    assert any("no token ordering them" in r for r in races)


def test_race_checker_catches_an_uninitialised_read(tiny):
    text = """\
.tensor out output int8 4,4
.uop dst=0 src=0 wgt=0
load.uop sram_base=0 dram_base=@uops y_size=1 x_size=1 x_stride=1
alu.add use_imm imm=1 uop_begin=0 uop_end=1 iter_out=1 iter_in=1 push_next
store.out pop_prev sram_base=0 dram_base=@out y_size=1 x_size=1 x_stride=1
finish
"""
    assert find_races(assemble(text, tiny)) == ["instruction 1 reads ACC row 0, which nothing wrote before it"]
