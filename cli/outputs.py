"""Output paths of the commands: checked before any long work, never an input, never someone else's file.

The rules every subcommand with an output option follows:

- An output that is one of the command's inputs (`asm x.s -o x.s`, `quantize m.onnx -o m.onnx`) is
  refused, with or without `--force`: writing it would destroy what is being read.
- A file output that exists is replaced only with `--force`, unless it is recognisably a file the
  command writes (`ours`, e.g. a program file for `asm`). A file output naming a folder is refused.
- A folder output may be created, or be empty, or hold what the same command wrote before (its marker
  file, e.g. a compiled model's settings.json): then it is replaced. A folder holding anything else
  is written into only with `--force` (files of the same names are replaced, the others kept);
  commands without `--force` refuse it. A folder output naming a file is refused.
- All of this is checked by `check_output` before compiling, synthesizing or simulating, so a bad
  path fails in a second, not after the work. Files are written with `write_file` (a temporary name
  in the same folder, renamed into place), folders built with `new_folder` (a temporary folder beside
  the output, moved into place when complete): an interrupted command leaves the old output or the
  new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..cache import atomic_path
from ..errors import TensorweaveError

__all__ = ["CLAIM", "OutputError", "check_output", "claim_folder", "new_folder", "write_file"]

# Written first into a folder a long command fills in place (fpga), so an interrupted run's folder is
# still recognised as the command's own on the next run.
CLAIM = ".tensorweave-output"


class OutputError(TensorweaveError):
    """An output path the command refuses to write (an input, someone else's file, a file for a folder)."""


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output(path: str | Path, kind: str = "file", *, force: bool | None = False, inputs: Iterable[str | Path] = (),
                 marker: str | tuple[str, ...] = (), ours: Callable[[Path], bool] | None = None,
                 option: str = "-o") -> Path:
    """Check that `path` may be written as a `kind` ("file" or "folder") output; return it as a Path.

    `force`: the command's --force (None: it has none); `inputs`: the command's input files (never
    overwritten); `marker`: the file(s) that mark a folder as this command's earlier output; `ours`: for
    a file, whether an existing one is this command's kind of file (replaced without `--force`);
    `option`: how the user named the path, for the messages."""
    path = Path(path)
    for given in inputs:
        if _same(path, Path(given)):
            raise OutputError(f"{option} {path} is also the input '{given}': writing it would destroy the input; "
                              "give another output path")
    if kind == "file":
        if path.is_dir():
            raise OutputError(f"{option} {path} is a folder; give a file name (e.g. {path / 'out'})")
        if path.exists() and not force and not (ours is not None and _recognised(ours, path)):
            raise OutputError(f"{option} {path} already exists and was not written by this command; "
                              + ("add --force to replace it, or give another path" if force is not None
                                 else "give another path or remove it"))
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputError(f"{option} {path}: '{parent}' is a file, not a folder")
    elif kind == "folder":
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {path} is a file; give a folder (it is created if absent)")
        markers = (marker,) if isinstance(marker, str) else marker
        if path.is_dir() and any(path.iterdir()) and not force and not any((path / m).is_file() for m in markers):
            what = (f"holds no {' or '.join(markers)}, so it is not an earlier output of this command" if markers
                    else "is not empty")
            raise OutputError(f"{option} {path} {what}; give a new or empty folder"
                              + (", or add --force to write into it" if force is not None else ""))
    else:
        raise ValueError(f"kind must be 'file' or 'folder', not {kind!r}")
    return path


def claim_folder(path: Path, command: str) -> Path:
    """Create the output folder `path` (checked by `check_output`) and mark it as `command`'s (`CLAIM`)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / CLAIM).write_text(f"written by tensorweave {command}\n")
    return path


def _recognised(ours: Callable[[Path], bool], path: Path) -> bool:
    try:
        return bool(ours(path))
    except Exception:  # noqa: BLE001 - a file we cannot read is not recognisably ours
        return False


def write_file(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to fill a temporary file beside `path`, then rename it onto `path` (mode 0644
    less the umask, like a plain open would give). On an error `path` is untouched."""
    with atomic_path(path) as tmp:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    return path


@contextmanager
def new_folder(path: Path) -> Iterator[Path]:
    """A temporary folder beside `path` to fill in the block; on success it becomes `path`: it replaces a
    missing or empty folder, or is moved into one that `check_output` allowed entry by entry (a
    sub-folder of the same name is replaced whole). On an error nothing of it is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        if not path.exists():
            os.replace(tmp, path)
            return
        for entry in tmp.iterdir():
            target = path / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
