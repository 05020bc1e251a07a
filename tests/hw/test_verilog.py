"""Verilog generation, its JSON metadata, and Verilator lint with the documented waivers."""

import json

import pytest
from tensorweave.configs import load_config
from tensorweave.hw.lint import lint_file
from tensorweave.hw.verilog import generate


@pytest.fixture(scope="module")
def tiny_rtl(tmp_path_factory):
    return generate(load_config("tiny"), tmp_path_factory.mktemp("rtl"))


def test_generate_writes_verilog_and_metadata(tiny_rtl):
    import hashlib

    config = load_config("tiny")
    text = tiny_rtl.verilog.read_text()
    assert "module tensorweave_top(" in text
    meta = json.loads(tiny_rtl.metadata.read_text())
    assert meta["config_digest"] == config.digest == tiny_rtl.digest
    assert meta["config"] == config.to_dict()
    assert meta["verilog_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    ports = {p["name"]: (p["direction"], p["width"]) for p in meta["ports"]}
    assert ports["clk"] == ("input", 1) and ports["rst"] == ("input", 1) and ports["irq"] == ("output", 1)
    assert ports["dram__rdata"] == ("input", 64) and ports["dram__araddr"] == ("output", 32)
    assert ports["dram__wstrb"] == ("output", 8) and ports["ctrl__wdata"] == ("input", 32)
    assert ports["ctrl__rdata"] == ("output", 32) and ports["ctrl__awaddr"] == ("input", 8)
    for name in ports:
        assert f" {name};" in text or f" {name} " in text or f"] {name};" in text
    registers = {r["name"]: r["offset"] for r in meta["registers"]}
    assert registers["STATUS"] == 0x04 and registers["UNIT_STATE"] == 0x34
    assert meta["error_codes"]["9"] == "deadlock: every unit waits on a token or a command that cannot come"
    assert meta["config_digest_register"] == int(config.digest[:8], 16)


def test_generation_is_deterministic(tiny_rtl, tmp_path):
    again = generate(load_config("tiny"), tmp_path)
    assert again.verilog_sha256 == tiny_rtl.verilog_sha256


def test_verilator_lint_all_warnings_with_waivers(tiny_rtl):
    result = lint_file(tiny_rtl.verilog)
    assert result.ok, "\n".join(result.warnings[:20])
    assert "-Wall" in result.command


def test_lint_catches_what_is_not_waived(tmp_path):
    """The waivers must not hide real problems: an output nothing drives still fails."""
    bad = tmp_path / "bad.v"
    bad.write_text("module tensorweave_top(input clk, output q, output r);\n  assign r = clk;\nendmodule\n")
    result = lint_file(bad)
    assert not result.ok and any("UNDRIVEN" in w for w in result.warnings)
