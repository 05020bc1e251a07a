"""pyproject.toml lists every package folder and every data file, so a non-editable install ships all
the code and all it reads at run time (the presets, isa.yaml, the harness source, the FPGA estimates)."""

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "benchmarks", "build", ".venv", "examples", "docs"}
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _shipped_folder(rel: Path) -> bool:
    # *.egg-info: what `pip install -e .` (make test) leaves in the checkout; never part of the package
    return not rel.parts or (rel.parts[0] not in NOT_SHIPPED and not rel.parts[0].startswith(".")
                             and not rel.parts[0].endswith(".egg-info"))


def _package_of(rel: Path) -> tuple[str, Path]:
    """The dotted name of the innermost package folder holding `rel`, and `rel` relative to it."""
    folder = rel.parent
    while folder != Path(".") and not (ROOT / folder / "__init__.py").is_file():
        folder = folder.parent
    return ".".join(("tensorweave",) + folder.parts), rel.relative_to(folder)


def _data_files() -> list[Path]:
    """Every file in a shipped package folder that is not Python source (nor a cache of it)."""
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if (path.is_file() and _shipped_folder(rel.parent) and path.suffix not in (".py", ".pyc")
                and "__pycache__" not in rel.parts and len(rel.parts) > 1 and not rel.name.startswith(".")):
            files.append(rel)
    return sorted(files)


def test_every_package_folder_is_listed():
    found = {"tensorweave"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and rel.parts[0] not in NOT_SHIPPED:
            found.add(".".join(("tensorweave",) + rel.parts))
    assert found == set(SETUPTOOLS["packages"])


def test_package_data_covers_every_data_file():
    """fpga/estimates/*.json (read by dse.area and fpga.fit) and every other non-Python file in a package
    folder match a package-data pattern of their package."""
    assert Path("fpga/estimates/tiny--pynq-z2.json") in _data_files()
    patterns = SETUPTOOLS["package-data"]
    uncovered = []
    for rel in _data_files():
        package, inner = _package_of(rel)
        if not any(fnmatch.fnmatch(str(inner), p) for p in patterns.get(package, [])):
            uncovered.append(f"{rel} (package {package})")
    assert not uncovered, f"not in [tool.setuptools.package-data]: {', '.join(uncovered)}"


@pytest.mark.wheel
def test_the_wheel_holds_the_code_and_its_data(tmp_path):
    """A real wheel build (pip, with build isolation as an install does) holds every data file."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED, ".git", "__pycache__",
                                                                 "*.egg-info", ".pytest_cache", ".hypothesis"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                           str(source)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and ("No matching distribution" in proc.stderr or "NewConnectionError" in proc.stderr):
        pytest.skip("the build backend (setuptools, pinned in pyproject.toml) cannot be fetched: offline")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("tensorweave-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [str(rel) for rel in _data_files() if f"tensorweave/{rel.as_posix()}" not in names]
    assert not missing, f"not in {wheel.name}: {', '.join(missing)}"
    assert "tensorweave/cache.py" in names and "tensorweave/fpga/fit.py" in names
    assert not any(n.startswith(("tensorweave/tests/", "tensorweave/docs/")) for n in names)
