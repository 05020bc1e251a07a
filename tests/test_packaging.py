"""pyproject.toml lists every package folder and every data file, so a non-editable install ships all
the code and all it reads at run time (the presets, sweep spaces, examples, isa.yaml, the harness
source, the FPGA estimates); the build warns of nothing; and the installed wheel, in a fresh venv
outside the repository, follows the README's tour from another folder."""

import fnmatch
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "benchmarks", "build", ".venv", "docs", "out"}
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGES = set(SETUPTOOLS["packages"])
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _shipped_folder(rel: Path) -> bool:
    # *.egg-info: what `pip install -e .` (make test) leaves in the checkout; never part of the package
    return not rel.parts or (rel.parts[0] not in NOT_SHIPPED and not rel.parts[0].startswith(".")
                             and not rel.parts[0].endswith(".egg-info"))


def _dotted(folder: Path) -> str:
    return ".".join(("tensorweave",) + folder.parts)


def _package_of(rel: Path) -> tuple[str, Path]:
    """The innermost listed package holding `rel`, and `rel` relative to its folder."""
    folder = rel.parent
    while folder != Path(".") and _dotted(folder) not in PACKAGES:
        folder = folder.parent
    return _dotted(folder), rel.relative_to(folder)


def _data_files() -> list[Path]:
    """Every file in a shipped package folder that is not Python source (nor a cache of it)."""
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if (path.is_file() and _shipped_folder(rel.parent) and path.suffix not in (".py", ".pyc")
                and "__pycache__" not in rel.parts and len(rel.parts) > 1 and not rel.name.startswith(".")
                and not any(p.endswith(".egg-info") for p in rel.parts)):
            files.append(rel)
    return sorted(files)


def test_every_package_folder_is_listed():
    """Code folders (with __init__.py) and data folders whose names could be imported (setuptools
    warns "Package would be ignored" about those unless they are listed) are packages; every listed
    package is a folder."""
    found = {"tensorweave"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and _shipped_folder(rel):
            found.add(_dotted(rel))
    for rel in _data_files():
        folder = rel.parent
        while folder != Path(".") and all(part.isidentifier() for part in folder.parts):
            found.add(_dotted(folder))
            folder = folder.parent
    assert found == PACKAGES
    assert {"tensorweave.examples", "tensorweave.configs.sweeps", "tensorweave.fpga.estimates"} <= PACKAGES
    assert all((ROOT / Path(*p.split(".")[1:])).is_dir() for p in PACKAGES)


def test_package_data_covers_every_data_file():
    """fpga/estimates/*.json (read by dse.area and fpga.fit), the sweep spaces, the examples and every
    other non-Python file in a package folder match a package-data pattern of their package."""
    files = _data_files()
    for shipped in ("fpga/estimates/tiny--pynq-z2.json", "configs/sweeps/gemm-core.yaml", "examples/gemm_relu_shift.s",
                    "isa/generated/vta-default/isa.h"):
        assert Path(shipped) in files
    patterns = SETUPTOOLS["package-data"]
    uncovered = []
    for rel in files:
        package, inner = _package_of(rel)
        if not any(fnmatch.fnmatch(str(inner), p) for p in patterns.get(package, [])):
            uncovered.append(f"{rel} (package {package})")
    assert not uncovered, f"not in [tool.setuptools.package-data]: {', '.join(uncovered)}"


def test_license_file_is_the_apache_license():
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "9. Accepting Warranty or Additional Liability." in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]


def _offline(proc: subprocess.CompletedProcess) -> bool:
    text = proc.stdout + proc.stderr
    return proc.returncode != 0 and any(s in text for s in ("No matching distribution", "NewConnectionError",
                                                            "Could not find a version"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """A real wheel build (pip, with build isolation as an install does) of a copy of the checkout,
    and pip's verbose output (which holds the build backend's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED, ".git", "__pycache__", "*.egg-info",
                                                                 ".pytest_cache", ".hypothesis", ".mypy_cache",
                                                                 ".ruff_cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp / "dist"),
                           str(source)], capture_output=True, text=True, timeout=600)
    if _offline(proc):
        pytest.skip("the build backend (setuptools, pinned in pyproject.toml) cannot be fetched: offline")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (built,) = (tmp / "dist").glob("tensorweave-*.whl")
    return built, proc.stdout + proc.stderr


@pytest.mark.wheel
def test_the_wheel_holds_the_code_and_its_data(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    missing = [str(rel) for rel in _data_files() if f"tensorweave/{rel.as_posix()}" not in names]
    assert not missing, f"not in {path.name}: {', '.join(missing)}"
    assert "tensorweave/cache.py" in names and "tensorweave/fpga/fit.py" in names
    assert f"tensorweave-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tensorweave/tests/", "tensorweave/docs/", "tensorweave/benchmarks/")) for n in names)


@pytest.mark.wheel
def test_the_build_prints_no_warning(wheel):
    """The build backend's output is in the log (so the check can see a warning) and holds none."""
    _, log = wheel
    assert "running build_py" in log
    bad = [line.strip() for line in log.splitlines()
           if "Package would be ignored" in line or "BuildBackendWarning" in line or "SetuptoolsDeprecationWarning" in line]
    assert not bad, "\n".join(bad[:20])


@pytest.mark.wheel
def test_the_installed_wheel_follows_the_tour(wheel, tmp_path):
    """Install the wheel *with its pinned dependencies* into a fresh venv outside the repository and run
    the README tour's commands from an unrelated folder, with no PYTHONPATH: what a new user does.

    Honest and still fast enough for the default run: the venv is created from scratch (no
    --system-site-packages, no reuse of the development venv), so a data file or a dependency missing
    from the wheel's metadata fails here; pip resolves the pinned versions from its cache / the
    configured indexes (about 75 s on a busy 2-core machine, measured when this test was written;
    the default run takes it, `make test-fast` leaves it out with the `wheel` marker). Offline
    with a cold cache it skips."""
    path, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    start = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(path)], capture_output=True, text=True,
                          timeout=900)
    if _offline(proc):
        pytest.skip("the wheel's pinned dependencies cannot be fetched: offline")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    print(f"installed the wheel and its dependencies in {time.monotonic() - start:.0f} s")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TENSORWEAVE_CACHE"] = str(tmp_path / "cache")
    tw = str(venv / "bin" / "tensorweave")

    def run(*argv: str) -> str:
        result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        return result.stdout

    where = run(str(venv / "bin" / "python"), "-c", "import tensorweave; print(tensorweave.__file__)")
    assert where.startswith(str(venv)), where
    assert run(tw, "--version") == f"tensorweave {VERSION}\n"
    assert "vta-default" in run(tw, "config", "list")
    assert "# tensorweave ISA for `tiny`" in run(tw, "isa", "doc", "--config", "tiny")
    assert "gemm_relu_shift" in run(tw, "examples")
    assert "wrote g.twp: 9 instructions" in run(tw, "asm", "gemm_relu_shift", "--config", "tiny", "-o", "g.twp")
    assert "output C int8" in run(tw, "sim", "g.twp")
    (work / "mine.yaml").write_text("base: vta-default\nclock_mhz: 150\nbus_width: 128\n")
    assert "config mine (" in run(tw, "config", "show", "mine.yaml")
    assert "resource estimate for mine" in run(tw, "area", "mine.yaml")
    assert "no table to check" in run(tw, "fpga", "fit-table", "--check", "--presets", "tiny")
    assert run(tw, "fpga", "fit-table").startswith("<!-- generated by `tensorweave fpga fit-table`")
    out = run(tw, "sweep", "gemm-core", "--max-points", "2", "-j", "1", "-q", "-o", "sweep")
    assert "sweep gemm-core: 2 points" in out and (work / "sweep" / "report.html").is_file()
    assert run(tw, "cache", "info").startswith(f"cache root {tmp_path / 'cache'} ")
    assert sorted(p.name for p in work.iterdir()) == ["g.twp", "mine.yaml", "sweep"]
