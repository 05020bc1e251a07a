"""The one on-disk cache: its root, its layout, atomic writes, locking and format versions.

Root: `$TENSORWEAVE_CACHE`, default `~/.cache/tensorweave`. Layout: one folder per cache kind and
format version, `<root>/<kind>-v<version>` (`cache_dir`), so a change of what an entry means is a
version bump and an old cache is never misread: the new version starts from an empty folder.
Kinds today: `verilator` and `cocotb` (cosim builds), `cpu` (compiled C), `cuda`, `opencl` and
`pocl` (GPU binaries), `fpga` (synthesis and build results), `schedules` (accelerator tilings).

Writes: `atomic_path` / `atomic_write` write a temporary name in the same folder and `os.replace` it
into place, so a reader sees the old entry or the whole new one, never a partial file, and a
failure leaves nothing behind. `locked` holds an exclusive `fcntl` lock on a lock file, so processes
sharing a cache build an entry once.

Housekeeping (`tensorweave cache info|clear`): `cache_kinds` lists the `<kind>-v<version>` folders
under the root with their sizes and entry counts; `clear` removes them (one kind or all). Only
folders named by the layout are touched, never anything else that happens to be in the root.

This module is at the bottom of the package (beside `errors`): it imports nothing of tensorweave's
but the error class.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import TensorweaveError

__all__ = ["ENV", "CacheError", "CacheFolder", "atomic_path", "atomic_write", "cache_dir", "cache_kinds",
           "cache_root", "cache_size", "clear", "locked"]

ENV = "TENSORWEAVE_CACHE"
_KIND = re.compile(r"[a-z][a-z0-9_]*")
_FOLDER = re.compile(r"(?P<kind>[a-z][a-z0-9_]*)-v(?P<version>[1-9][0-9]*)")


class CacheError(TensorweaveError):
    """The cache root or a cache folder is unusable (e.g. `$TENSORWEAVE_CACHE` names a file)."""


def cache_root() -> Path:
    """`$TENSORWEAVE_CACHE`, else `~/.cache/tensorweave` (not created here)."""
    env = os.environ.get(ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "tensorweave"
    if root.exists() and not root.is_dir():
        source = f"${ENV}" if env else "the default cache root"
        raise CacheError(f"{source} is {root}, which is a file, not a folder: set ${ENV} to a folder "
                         "(or unset it for ~/.cache/tensorweave)")
    return root


def cache_dir(kind: str, version: int) -> Path:
    """The folder of cache `kind` in format `version`, `<root>/<kind>-v<version>`, created if absent."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"cache kind must be lowercase letters, digits and '_', not {kind!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"cache version must be an int >= 1, not {version!r}")
    path = cache_root() / f"{kind}-v{version}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder of the path should be, or no permission
        raise CacheError(f"cannot create the cache folder {path} ({exc.strerror or exc}); "
                         f"set ${ENV} to a writable folder") from exc
    return path


@contextmanager
def atomic_path(path: Path, directory: bool = False) -> Iterator[Path]:
    """A fresh temporary file (or, with `directory`, folder) beside `path`, to be filled in the block;
    on normal exit it replaces `path` in one rename, on an exception it is removed and `path` is
    untouched. A folder can only replace a missing or empty `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", ".tmp"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` (str as UTF-8) to `path` atomically (see `atomic_path`)."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if absent) for the block; other processes
    asking for the same lock wait. The lock file itself is left in place (deleting it would let two
    processes lock two different files of one name)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CacheFolder:
    """One `<kind>-v<version>` folder of the cache: its bytes on disk and its entries (the names in it,
    less lock files and unfinished temporary ones)."""

    kind: str
    version: int
    path: Path
    size: int
    entries: int


def cache_size(path: Path) -> int:
    """Bytes of the regular files under `path` (a file: its own size); symbolic links are not followed."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    total = 0
    for parent, _, files in os.walk(path):
        for name in files:
            file = Path(parent) / name
            if not file.is_symlink():
                try:
                    total += file.stat().st_size
                except OSError:  # removed while we walked (another process finishing an atomic write)
                    pass
    return total


def _entries(path: Path) -> int:
    return sum(1 for p in path.iterdir() if not p.name.startswith(".") and p.suffix != ".lock")


def cache_kinds(kind: str | None = None) -> list[CacheFolder]:
    """The cache's `<kind>-v<version>` folders (only those of `kind` when given), by kind then version;
    empty when the root does not exist yet."""
    root = cache_root()
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _FOLDER.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink() and kind in (None, match["kind"]):
            found.append(CacheFolder(match["kind"], int(match["version"]), path, cache_size(path), _entries(path)))
    return sorted(found, key=lambda f: (f.kind, f.version))


def clear(kind: str | None = None) -> list[CacheFolder]:
    """Remove every version folder of cache `kind` (all kinds when None); returns what was removed.
    A kind with no folder is an error naming the kinds there are, so a typo does not pass as done."""
    if kind is not None and not _KIND.fullmatch(kind):
        raise CacheError(f"a cache kind is lowercase letters, digits and '_', not {kind!r}")
    folders = cache_kinds(kind)
    if kind is not None and not folders:
        present = sorted({f.kind for f in cache_kinds()})
        raise CacheError(f"no cache of kind '{kind}' in {cache_root()}; kinds there: "
                         + (", ".join(present) if present else "none (the cache is empty)"))
    for folder in folders:
        shutil.rmtree(folder.path)
    return folders
