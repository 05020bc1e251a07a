"""The C build cache: content-hash keys, reuse, corruption detection, compiler errors."""

from __future__ import annotations

import ctypes

import pytest
from tensorweave.compiler.backends.cpu import toolchain
from tensorweave.errors import TensorweaveError

SOURCE = "int tw_answer(int x) { return 6 * x; }\n"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))


def _answer(lib: ctypes.CDLL, x: int) -> int:
    lib.tw_answer.argtypes = [ctypes.c_int]
    return lib.tw_answer(x)


def test_build_is_cached_by_content(tmp_path) -> None:
    path = toolchain.build_library(SOURCE)
    assert path.parent == tmp_path / f"cpu-v{toolchain.CACHE_VERSION}" and path.suffix == ".so"
    stamp = path.stat().st_mtime_ns
    assert toolchain.build_library(SOURCE) == path
    assert path.stat().st_mtime_ns == stamp  # not rebuilt
    other = toolchain.build_library(SOURCE.replace("6 *", "7 *"))
    assert other != path
    assert _answer(toolchain.load_library(SOURCE), 7) == 42


def test_corrupted_library_is_rebuilt() -> None:
    path = toolchain.build_library(SOURCE)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # truncated, e.g. a crash while copying
    rebuilt = toolchain.build_library(SOURCE)
    assert rebuilt == path and path.read_bytes() != good[: len(good) // 3]
    source = SOURCE.replace("6 *", "5 *")  # a path never loaded in this process, then corrupted
    path2 = toolchain.build_library(source)
    path2.write_bytes(b"not an ELF file")
    assert _answer(toolchain.load_library(source), 2) == 10


def test_compiler_errors_are_reported() -> None:
    with pytest.raises(toolchain.CompileError, match="rejected generated code") as info:
        toolchain.build_library("int broken( {")
    assert isinstance(info.value, TensorweaveError)


def test_parallel_builds() -> None:
    sources = [SOURCE.replace("6 *", f"{i} *") for i in range(4)]
    paths = toolchain.build_libraries(sources, jobs=2)
    assert len(set(paths)) == 4 and all(p.exists() for p in paths)


def test_toolchain_probe() -> None:
    tc = toolchain.detect_toolchain()
    assert tc.flags[0] == "-O3"
    assert tc.openmp == ("-fopenmp" in tc.flags)
