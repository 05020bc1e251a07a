"""`tensorweave cache info|clear` and the functions under them (tensorweave.cache)."""

import pytest
from tensorweave import cache
from tensorweave.cli import main


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fill(root):
    """Two kinds, one with two versions; known sizes and entries (a lock and a temp file are not entries)."""
    cpu = cache.cache_dir("cpu", 3)
    (cpu / "a.so").write_bytes(b"x" * 1000)
    (cpu / "b.so").write_bytes(b"y" * 24)
    (cpu / "a.lock").write_bytes(b"")
    (cpu / ".b.so.123.tmp").write_bytes(b"z" * 5)
    old = cache.cache_dir("cpu", 2)
    (old / "stale.so").write_bytes(b"s" * 2048)
    sub = cache.cache_dir("verilator", 4) / "k1"
    sub.mkdir()
    (sub / "Vtop").write_bytes(b"v" * 3000)
    (sub / "obj").mkdir()
    (sub / "obj" / "x.o").write_bytes(b"o" * 100)
    (root / "notes.txt").write_text("not a cache folder")
    (root / "other").mkdir()


def test_cache_kinds_sizes_and_entries(root):
    assert cache.cache_kinds() == []  # no root yet
    _fill(root)
    found = [(f.kind, f.version, f.path.name, f.size, f.entries) for f in cache.cache_kinds()]
    assert found == [("cpu", 2, "cpu-v2", 2048, 1), ("cpu", 3, "cpu-v3", 1029, 2),
                     ("verilator", 4, "verilator-v4", 3100, 1)]
    assert [f.version for f in cache.cache_kinds("cpu")] == [2, 3]
    assert cache.cache_size(root / "verilator-v4") == 3100


def test_clear_one_kind_then_all_leaves_other_files(root):
    _fill(root)
    removed = cache.clear("cpu")
    assert [f.path.name for f in removed] == ["cpu-v2", "cpu-v3"]
    assert not (root / "cpu-v2").exists() and not (root / "cpu-v3").exists() and (root / "verilator-v4").is_dir()
    with pytest.raises(cache.CacheError, match="no cache of kind 'cpu' in .*; kinds there: verilator"):
        cache.clear("cpu")
    assert [f.path.name for f in cache.clear()] == ["verilator-v4"]
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt", "other"]
    assert cache.clear() == []
    with pytest.raises(cache.CacheError, match="a cache kind is lowercase"):
        cache.clear("../x")


def test_cache_info_and_clear_commands(root, capsys):
    assert main(["cache", "info"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"cache root {root} (set $TENSORWEAVE_CACHE to move it)", "empty"]
    _fill(root)
    assert main(["cache", "info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["cpu-v2           2.0 KiB  1 entries",
                         "cpu-v3           1.0 KiB  2 entries",
                         "verilator-v4     3.0 KiB  1 entries",
                         "total            6.0 KiB  4 entries"]
    assert main(["cache", "clear", "verilator"]) == 0
    assert capsys.readouterr().out == f"removed {root / 'verilator-v4'} (3.0 KiB, 1 entries)\n"
    assert main(["cache", "clear", "fpga"]) == 2
    assert "error: no cache of kind 'fpga'" in capsys.readouterr().err
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.count("removed ") == 2
    assert not any(p.name.startswith("cpu-") for p in root.iterdir())
    assert main(["cache", "clear"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
