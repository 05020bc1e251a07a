"""tensorweave.cache: the root and its errors, the layout by kind and version, atomic writes, locking."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorweave import cache
from tensorweave.compiler.backends.cpu import toolchain
from tensorweave.errors import TensorweaveError
from tensorweave.fpga import cache as fpga_cache


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))


def test_root_and_layout(tmp_path, monkeypatch):
    assert cache.cache_root() == tmp_path / "cache"
    folder = cache.cache_dir("cpu", 3)
    assert folder == tmp_path / "cache" / "cpu-v3" and folder.is_dir()
    monkeypatch.delenv("TENSORWEAVE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "tensorweave"
    with pytest.raises(ValueError, match="cache kind"):
        cache.cache_dir("../escape", 1)
    with pytest.raises(ValueError, match="cache version"):
        cache.cache_dir("cpu", 0)


def test_cache_variable_naming_a_file_is_a_project_error(tmp_path, monkeypatch):
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(target))
    with pytest.raises(cache.CacheError, match=r"\$TENSORWEAVE_CACHE is .*not-a-folder, which is a file") as info:
        cache.cache_dir("fpga", 1)
    assert isinstance(info.value, TensorweaveError)
    with pytest.raises(cache.CacheError, match="TENSORWEAVE_CACHE"):  # as a cache user meets it
        toolchain.cache_dir()
    # a file further down the path: the folder cannot be made, and the error says what to set
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(target / "below"))
    with pytest.raises(cache.CacheError, match="set \\$TENSORWEAVE_CACHE to a writable folder"):
        cache.cache_dir("fpga", 1)


def test_atomic_write_replaces_whole(tmp_path):
    path = tmp_path / "out" / "entry.json"
    cache.atomic_write(path, "first")
    cache.atomic_write(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["entry.json"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "entry.bin"
    cache.atomic_write(path, b"old contents")
    with pytest.raises(RuntimeError, match="disk full"):
        with cache.atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"]
    fresh = tmp_path / "never.bin"
    with pytest.raises(KeyboardInterrupt):
        with cache.atomic_path(fresh) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert not fresh.exists() and [p.name for p in tmp_path.iterdir()] == ["entry.bin"]


def test_a_failed_folder_entry_is_removed(tmp_path):
    entry = tmp_path / "build"
    with pytest.raises(OSError):
        with cache.atomic_path(entry, directory=True) as work:
            (work / "half").write_text("x")
            raise OSError("the tool died")
    assert list(tmp_path.iterdir()) == []
    with cache.atomic_path(entry, directory=True) as work:
        (work / "done").write_text("y")
    assert (entry / "done").read_text() == "y" and list(tmp_path.iterdir()) == [entry]


CHILD = """
import sys, time
from pathlib import Path
from tensorweave.cache import locked
log = Path(sys.argv[2])
with locked(Path(sys.argv[1])):
    with log.open("a") as f:
        f.write(f"child {time.monotonic()}\\n")
"""


def test_locking_serializes_two_processes(tmp_path):
    lock, log = tmp_path / "key.lock", tmp_path / "log"
    log.write_text("")
    with cache.locked(lock):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(lock), str(log)], env=dict(os.environ))
        time.sleep(1.5)  # long enough for the child to start and block on the lock
        assert log.read_text() == "", "the child wrote while this process held the lock"
        released = time.monotonic()
    assert child.wait(timeout=60) == 0
    stamp = float(log.read_text().split()[1])
    assert stamp >= released


def test_a_version_change_misses(tmp_path, monkeypatch):
    key = fpga_cache.cache_key(kind="estimate", verilog="abc")
    fpga_cache.store(key, {"fits": True}, [])
    assert fpga_cache.lookup(key) == {"fits": True}
    monkeypatch.setattr(fpga_cache, "VERSION", fpga_cache.VERSION + 1)
    assert fpga_cache.lookup(key) is None  # the old entry is never read as the new format
    fpga_cache.store(key, {"fits": False}, [])
    assert fpga_cache.lookup(key) == {"fits": False}
    monkeypatch.setattr(fpga_cache, "VERSION", fpga_cache.VERSION - 1)
    assert fpga_cache.lookup(key) == {"fits": True}
    assert sorted(p.name for p in Path(cache.cache_root()).iterdir() if p.is_dir()) == [
        f"fpga-v{fpga_cache.VERSION}", f"fpga-v{fpga_cache.VERSION + 1}"]
