"""Assembler and disassembler: round trips, symbols, and errors that name the line."""

import pytest
from tensorweave.configs import load_config
from tensorweave.isa import AsmError, assemble, build_isa, disassemble
from tensorweave.sim.programs import blocked_gemm


@pytest.mark.parametrize("preset", ["tiny", "vta-default", "batch2-32x32", "w4a8"])
def test_disassembly_reassembles_to_the_same_program(preset):
    config = load_config(preset)
    program = assemble(blocked_gemm(config, 2 * config.batch, 2 * config.block_in, 2 * config.block_out), config)
    again = assemble(disassemble(program), config)
    assert again.insns == program.insns and again.uops == program.uops
    assert again.tensors == program.tensors
    assert all((again.data[k] == v).all() for k, v in program.data.items())


def test_symbols_resolve_in_element_units():
    config = load_config("vta-default")
    program = assemble(".tensor W weight int8 2,16,16\n.tensor A input int8 4,16\n"
                       "load.wgt dram_base=@W+1\nload.inp dram_base=@A\nload.uop dram_base=@uops\nfinish\n", config)
    isa = build_isa(config)
    w, a = program.tensor("W"), program.tensor("A")
    words = [isa.decode(x) for x in program.insns]
    assert words[0].dram_base == w.offset // config.wgt_row_bytes + 1
    assert words[1].dram_base == a.offset // config.inp_row_bytes
    assert words[2].dram_base == program.uop_offset // config.uop_bytes


@pytest.mark.parametrize("text, message", [
    ("gemm bogus=1", r"<asm>:1: GEMM has no field 'bogus'; fields: pop_prev"),
    ("frob", r"<asm>:1: unknown instruction 'frob'"),
    ("alu.div", r"<asm>:1: 'div' is not a alu_opcode; one of MIN, MAX, ADD, SHR, MUL"),
    ("gemm iter_out", r"field 'iter_out' needs a value"),
    ("\n\ngemm iter_out=99999", r"<asm>:3: GEMM.iter_out = 99999 does not fit its 14 bits"),
    ("load.inp dram_base=@nothing", r"<asm>:1: no tensor named 'nothing'"),
    ("gemm uop_begin=x", r"'x' is not an integer"),
    (".tensor A input int8", r".tensor needs NAME ROLE DTYPE SHAPE"),
    (".tensor A input int9 4", r"unknown dtype 'int9'"),
    (".tensor A input int8 4 init=values:1,2", r"tensor 'A' has 4 elements, 2 values given"),
    (".tensor A input int8 2 init=values:1,200", r"tensor 'A': values span 1..200, outside int8"),
    (".tensor A input int8 4\n.tensor A input int8 4", r"tensor 'A' is declared twice"),
    (".uop dst=1 bad=2", r".uop takes dst=, src=, wgt=, not bad"),
    ("finish.x", r"FINISH takes no '.x' suffix"),
    ("gemm opcode=1", r"field 'opcode' cannot be set"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(AsmError, match=message):
        assemble(text, load_config("vta-default"))
