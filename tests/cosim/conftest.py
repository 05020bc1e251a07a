"""Shared, session-scoped RTL builds: each Verilator build happens once per test run (and is cached on disk)."""

import importlib.util
import os
from pathlib import Path

import pytest
from amaranth.back import verilog
from tensorweave.configs import load_config

HERE = Path(__file__).resolve().parent

# Tests check behaviour, not speed: compile the models at -O0 (same Verilator flags, same model;
# the C++ compile is several times faster). Benchmarks and the CLI keep -O3.
os.environ.setdefault("TENSORWEAVE_RTL_CXX_OPT", "-O0")


def _echo_module():
    spec = importlib.util.spec_from_file_location("tw_echo_design", HERE / "echo_design.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_design = _echo_module()


@pytest.fixture(scope="session")
def echo_verilog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("echo") / "tensorweave_top.v"
    path.write_text(verilog.convert(echo_design.EchoTop(64), name="tensorweave_top"))
    return path


@pytest.fixture(scope="session")
def echo_harness(echo_verilog):
    from tensorweave.cosim import build_harness

    return build_harness(echo_verilog)


def _accelerator_harness(preset: str):
    from tensorweave.cosim.engine import harness_for

    return harness_for(load_config(preset))


@pytest.fixture(scope="session")
def tiny_harness():
    return _accelerator_harness("tiny")


@pytest.fixture(scope="session")
def vta_harness():
    return _accelerator_harness("vta-default")
