"""Launching the cocotb testbench (`cocotb_tb.py`) on Verilator from Python, with a build cache.

Builds go to `<cache>/cocotb/<key>` where the key is the sha256 of the Verilog and the build
flags. A finished build gets a manifest with the sha256 of its simulator executable; a folder
without a valid manifest is deleted and rebuilt. cocotb 2.1 insists on `build()` before `test()`
in the same process, so a cached build still calls `build()`, with the commands skipped.
Each run happens in a fresh folder. This module uses `engine`'s result handling and is used by
`engines` (`run_rtl`, `CocotbEngine`); `engine` does not import it back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..cache import cache_dir, locked
from ..contract.engine import RunResult
from ..isa import Program
from .build import LINT_WAIVERS, build_key, file_sha256, verilator_env
from .engine import DRAM_BASE, HarnessResult, RTLError, _verilog, cycle_budget, parse_result, to_run_result

TEST_MODULE = "tensorweave.cosim.cocotb_tb"
MANIFEST = "tw-build.json"
# The cocotb model is bound by Python per cycle, not by C++ speed: compile it without optimisation,
# which builds several times faster (measured in the report of issue 4).
COMPILE_FLAGS = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


def _runner(skip_build: bool):
    from cocotb_tools.runner import Verilator

    class CachedVerilator(Verilator):
        """cocotb's Verilator runner whose build commands are skipped when the build is cached."""

        def _build_command(self):
            return [] if skip_build else super()._build_command()

    return CachedVerilator()


def _cached_build(build_dir: Path, top: str) -> bool:
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
        return file_sha256(build_dir / top) == manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _with_inputs(program: Program, inputs: Mapping[str, np.ndarray] | None) -> Program:
    if not inputs:
        return program
    data = dict(program.data)
    data.update({k: np.asarray(v, dtype=np.int64) for k, v in inputs.items()})
    program.dram_image(inputs)  # validates names, shapes and ranges
    return replace(program, data=data)


def run_cocotb_raw(verilog: Path, program: Program, inputs: Mapping[str, np.ndarray] | None = None,
                   waves: str | Path | None = None, stall_percent: int = 0, max_cycles: int | None = None,
                   check: bool = False, top: str = "tensorweave_top") -> HarnessResult:
    """Run `program` on `verilog` under the cocotb testbench; with `check`, the scoreboard must pass."""
    program = _with_inputs(program, inputs)
    build_args = list(LINT_WAIVERS)
    key = build_key(verilog, build_args + [COMPILE_FLAGS] + (["waves"] if waves else []), [])
    build_dir = cache_dir("cocotb", 1) / key[:32]
    saved = dict(os.environ)
    os.environ.update(verilator_env())  # the runner calls verilator and make from this environment
    os.environ["MAKEFLAGS"] = f"{os.environ['MAKEFLAGS']} {COMPILE_FLAGS}"
    try:
        with tempfile.TemporaryDirectory(prefix="tw-cocotb-") as tmp:
            tmp_path = Path(tmp)
            program_file, result_file = tmp_path / "program.twp", tmp_path / "result.bin"
            program.save(program_file)
            with locked(build_dir.with_suffix(".lock")):
                cached = _cached_build(build_dir, top)
                if not cached and build_dir.exists():
                    shutil.rmtree(build_dir)  # half-built or corrupted: never trusted
                runner = _runner(skip_build=cached)
                runner.build(sources=[verilog], hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                             waves=bool(waves), log_file=build_dir.with_suffix(".log"))
                if not cached:
                    (build_dir / MANIFEST).write_text(json.dumps({"sha256": file_sha256(build_dir / top)}))
            env = {"TW_PROGRAM": str(program_file), "TW_RESULT": str(result_file), "TW_DRAM_BASE": str(DRAM_BASE),
                   "TW_STALL": str(stall_percent), "TW_MAX_CYCLES": str(max_cycles or cycle_budget(program)),
                   "TW_CHECK": "1" if check else "0"}
            results_xml = runner.test(hdl_toplevel=top, test_module=TEST_MODULE, extra_env=env, waves=bool(waves),
                                      build_dir=build_dir, test_dir=tmp_path, results_xml=str(tmp_path / "r.xml"),
                                      log_file=tmp_path / "sim.log")
            if waves:
                dump = tmp_path / "dump.vcd"
                if dump.is_file():
                    shutil.copy(dump, waves)
            if not result_file.is_file():
                log = (tmp_path / "sim.log").read_text(errors="replace") if (tmp_path / "sim.log").is_file() else ""
                raise RTLError(f"the cocotb testbench wrote no result; log tail:\n{log[-3000:]}")
            failures = _failures(Path(results_xml))
            result = parse_result(result_file.read_bytes())
            if failures:
                raise RTLError(f"cocotb test failed: {failures}", result)
            return result
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _failures(results_xml: Path) -> str:
    import xml.etree.ElementTree as ET

    if not results_xml.is_file():
        return "no results file"
    messages = []
    for case in ET.parse(results_xml).iter("testcase"):
        for failure in case.iter("failure"):
            messages.append(failure.get("message") or "failed")
    return "; ".join(messages)


def run_cocotb(program: Program, inputs: Mapping[str, np.ndarray] | None = None, waves: str | Path | None = None,
               stall_percent: int = 0, max_cycles: int | None = None, check: bool = False) -> RunResult:
    """`run_rtl(..., engine="cocotb")`: the accelerator for the program's config under cocotb, as a `RunResult`."""
    result = run_cocotb_raw(_verilog(program.config), program, inputs, waves, stall_percent, max_cycles, check)
    return to_run_result(_with_inputs(program, inputs), result)
