"""fpga/cache.py: results and tool logs kept by key; large logs stored compressed, restored as they were."""

from __future__ import annotations

import os

from tensorweave.fpga import cache


def test_store_lookup_restore_with_a_large_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    line = b"      Activation pattern for cell $shl$12: { \\compute.core.is_alu } = 1'1\n"
    big = line * (2 * cache.COMPRESS_BYTES // len(line)) + os.urandom(1000).hex().encode()
    (work / "synth.log").write_bytes(big)
    (work / "prep.log").write_bytes(b"small log\n")
    (work / "stat.json").write_text('{"design": {}}')
    key = cache.cache_key(kind="estimate", verilog="abc")
    assert cache.lookup(key) is None
    cache.store(key, {"resources": {"LUT": 12}}, [work / "synth.log", work / "prep.log", work / "stat.json",
                                                   work / "missing.log"])
    entry = cache.entry_folder(key)
    assert sorted(p.name for p in entry.iterdir()) == ["prep.log", "result.json", "stat.json", "synth.log.gz"]
    assert (entry / "synth.log.gz").stat().st_size < len(big) / 10
    assert cache.lookup(key) == {"resources": {"LUT": 12}}

    again = tmp_path / "again"
    cache.restore(key, again)
    assert sorted(p.name for p in again.iterdir()) == ["prep.log", "stat.json", "synth.log"]
    assert (again / "synth.log").read_bytes() == big
    assert (again / "prep.log").read_bytes() == b"small log\n"


def test_a_corrupt_result_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))
    key = cache.cache_key(kind="estimate", verilog="def")
    cache.store(key, {"fits": True}, [])
    (cache.entry_folder(key) / "result.json").write_text('{"fits": tr')  # cut short
    assert cache.lookup(key) is None
