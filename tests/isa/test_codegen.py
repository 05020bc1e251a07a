"""Generated files: in step with the YAML, and the C header agrees with the Python encoder."""

import shutil
import subprocess

import pytest
from tensorweave.configs import load_config
from tensorweave.isa import Insn, build_isa
from tensorweave.isa.codegen import BANNER, GENERATED_DIR, check_all, generate


def test_generated_files_match_a_fresh_generation():
    stale = check_all()
    assert not stale, f"out of date (run `tensorweave isa generate`): {stale}"


def test_generated_files_carry_the_banner():
    for path, text in generate("vta-default").items():
        assert BANNER.format(preset="vta-default") in text.splitlines()[0]
        assert path.parent == GENERATED_DIR / "vta-default"


def test_drift_is_detected(tmp_path, monkeypatch):
    import tensorweave.isa.codegen as codegen
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED_DIR, copy)
    monkeypatch.setattr(codegen, "GENERATED_DIR", copy)
    assert codegen.check_all() == []
    header = copy / "tiny" / "isa.h"
    header.write_text(header.read_text().replace("#define TW_BLOCK_IN 4", "#define TW_BLOCK_IN 8"))
    assert codegen.check_all() == [header]


def test_markdown_has_the_vta_table():
    md = generate("vta-default")[GENERATED_DIR / "vta-default" / "ISA.md"]
    assert "| [127:118] | `wgt_factor_in` | 10 |" in md
    assert "| [57:26] | `dram_base` | 32 |" in md
    assert "sim/functional.py" in md


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_c_header_decodes_python_encoding(tmp_path):
    isa = build_isa(load_config("vta-default"))
    word = isa.encode(Insn("ALU", {"uop_begin": 77, "uop_end": 4000, "iter_out": 9999, "alu_opcode": 3,
                                   "use_imm": 1, "imm": -5, "src_factor_in": 1234, "push_next": 1}))
    lo, hi = word & (2**64 - 1), word >> 64
    src = tmp_path / "check.c"
    src.write_text(f"""
#include <stdio.h>
#include "isa.h"
int main(void) {{
    uint64_t w[2] = {{UINT64_C({lo}), UINT64_C({hi})}};
    printf("%llu %llu %llu %llu %llu %llu %llu\\n",
        (unsigned long long)tw_field(w, TW_ALU_OPCODE_SHIFT, TW_ALU_OPCODE_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_UOP_BEGIN_SHIFT, TW_ALU_UOP_BEGIN_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_UOP_END_SHIFT, TW_ALU_UOP_END_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_ITER_OUT_SHIFT, TW_ALU_ITER_OUT_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_ALU_OPCODE_SHIFT, TW_ALU_ALU_OPCODE_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_IMM_SHIFT, TW_ALU_IMM_WIDTH),
        (unsigned long long)tw_field(w, TW_ALU_SRC_FACTOR_IN_SHIFT, TW_ALU_SRC_FACTOR_IN_WIDTH));
    return 0;
}}
""")
    exe = tmp_path / "check"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-I", str(GENERATED_DIR / "vta-default"), str(src),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert [int(x) for x in out] == [4, 77, 4000, 9999, 3, 2**16 - 5, 1234]
