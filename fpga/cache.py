"""A result cache keyed by (Verilog hash, board, tool versions, flow options).

Entries are folders under `$TENSORWEAVE_CACHE/fpga` (default `~/.cache/tensorweave/fpga`) holding
`result.json` and the tool logs, so a repeated estimate or build returns at once. Logs over
`COMPRESS_BYTES` are kept gzip-compressed (yosys's log of a large design runs to hundreds of MB of
resource-sharing detail, a twentieth of that compressed) and come back uncompressed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

COMPRESS_BYTES = 1 << 20


def cache_root() -> Path:
    base = os.environ.get("TENSORWEAVE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "tensorweave") / "fpga"


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def lookup(key: str) -> dict[str, Any] | None:
    path = cache_root() / key / "result.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def store(key: str, result: dict[str, Any], files: list[Path]) -> None:
    folder = cache_root() / key
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        if file.is_file() and file.suffix == ".log" and file.stat().st_size > COMPRESS_BYTES:
            with open(file, "rb") as src, gzip.open(folder / f"{file.name}.gz", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst)
        elif file.is_file():
            shutil.copy2(file, folder / file.name)
    (folder / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))


def restore(key: str, out_dir: Path) -> None:
    """Copy a cached entry's files (logs, bitstream) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for file in (cache_root() / key).iterdir():
        if file.name.endswith(".log.gz"):
            with gzip.open(file, "rb") as src, open(out_dir / file.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif file.name != "result.json":
            shutil.copy2(file, out_dir / file.name)
