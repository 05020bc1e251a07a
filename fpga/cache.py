"""A result cache keyed by (Verilog hash, board, tool versions, flow options).

Entries are folders in the project cache (`tensorweave.cache`, kind `fpga`) holding `result.json`
and the tool logs, so a repeated estimate or build returns at once. Logs over `COMPRESS_BYTES` are
kept gzip-compressed (yosys's log of a large design runs to hundreds of MB of resource-sharing
detail, a twentieth of that compressed) and come back uncompressed. An entry is written in a
temporary folder and renamed into place, so a lookup never sees half of one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..cache import atomic_path, cache_dir, locked

COMPRESS_BYTES = 1 << 20
KIND = "fpga"
VERSION = 1  # bump when result.json or the stored files change meaning


def entry_folder(key: str) -> Path:
    """The folder of the entry `key` (present or not)."""
    return cache_dir(KIND, VERSION) / key


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def lookup(key: str) -> dict[str, Any] | None:
    path = entry_folder(key) / "result.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def store(key: str, result: dict[str, Any], files: list[Path]) -> None:
    folder = entry_folder(key)
    with locked(folder.with_suffix(".lock")):
        if folder.exists():  # a stale or corrupt entry: the new result replaces it whole
            shutil.rmtree(folder)
        with atomic_path(folder, directory=True) as work:
            for file in files:
                if file.is_file() and file.suffix == ".log" and file.stat().st_size > COMPRESS_BYTES:
                    with open(file, "rb") as src, gzip.open(work / f"{file.name}.gz", "wb", compresslevel=6) as dst:
                        shutil.copyfileobj(src, dst)
                elif file.is_file():
                    shutil.copy2(file, work / file.name)
            (work / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))


def restore(key: str, out_dir: Path) -> None:
    """Copy a cached entry's files (logs, bitstream) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for file in entry_folder(key).iterdir():
        if file.name.endswith(".log.gz"):
            with gzip.open(file, "rb") as src, open(out_dir / file.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif file.name != "result.json":
            shutil.copy2(file, out_dir / file.name)
