"""The generated C header: in step with contract/, carrying the banner, and compiled it says the same."""

import shutil
import subprocess

import pytest
from tensorweave.contract import codegen
from tensorweave.contract.codegen import BANNER, GENERATED_DIR, HEADER, check_all, generate
from tensorweave.contract.error_codes import ERROR_CODES
from tensorweave.contract.registers import REGISTERS
from tensorweave.contract.topology import UNITS


def test_generated_header_matches_a_fresh_generation():
    assert check_all() == [], "out of date: run `tensorweave isa generate`"


def test_header_carries_the_banner():
    text = generate()[GENERATED_DIR / HEADER]
    assert BANNER in text.splitlines()[0] and "do not edit" in BANNER


def test_drift_is_detected(tmp_path, monkeypatch):
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED_DIR, copy)
    monkeypatch.setattr(codegen, "GENERATED_DIR", copy)
    assert codegen.check_all() == []
    header = copy / HEADER
    header.write_text(header.read_text().replace("#define TW_REG_ERROR_CODE 0x1C", "#define TW_REG_ERROR_CODE 0x20"))
    assert codegen.check_all() == [header]
    header.unlink()
    assert codegen.check_all() == [header]


def test_the_isa_generate_command_checks_the_header(tmp_path, monkeypatch, capsys):
    from tensorweave.cli import main

    copy = tmp_path / "generated"
    shutil.copytree(GENERATED_DIR, copy)
    monkeypatch.setattr(codegen, "GENERATED_DIR", copy)
    (copy / HEADER).write_text("stale\n")
    assert main(["isa", "generate", "--check"]) == 1
    assert f"out of date: {copy / HEADER}" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_compiled_header_has_the_contract_values(tmp_path):
    """Compile a program against the header that prints its constants; they equal the Python tables."""
    prints = [f'printf("reg {r.name} %d\\n", TW_REG_{r.name});' for r in REGISTERS]
    prints += [f'printf("err %d %s\\n", TW_ERROR_{e.name}, tw_error_messages[TW_ERROR_{e.name}]);' for e in ERROR_CODES]
    prints += [f'printf("unit {u} %d\\n", TW_UNIT_{u.upper()});' for u in UNITS]
    source = tmp_path / "main.c"
    source.write_text('#include <stdio.h>\n#include "contract.h"\nint main(void) {\n' + "\n".join(prints) +
                      "\nreturn 0;\n}\n")
    exe = tmp_path / "main"
    subprocess.run(["cc", "-Wall", "-Werror", "-I", str(GENERATED_DIR), str(source), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == ([f"reg {r.name} {r.offset}" for r in REGISTERS] +
                     [f"err {e.code} {e.message}" for e in ERROR_CODES] +
                     [f"unit {u} {k}" for k, u in enumerate(UNITS)])
