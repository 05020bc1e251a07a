"""Reading the user's NumPy files (`run --input NAME=FILE.npy`, `quantize --data FILE.npz`) safely.

Every failure is the caller's error class naming the file and what is wrong: a missing file or a folder,
an .npz where one .npy array is wanted (or the reverse), a damaged file, a pickled object array (never
unpickled: `allow_pickle=False`, as loading a pickle runs code from the file), an array of text,
structures or objects, or values that do not fit the input's dtype.
"""

from __future__ import annotations

import tokenize
import zipfile
from pathlib import Path

import numpy as np

from ..errors import TensorweaveError

__all__ = ["cast_to", "read_npy", "read_npz"]

# what a damaged .npy / .npz raises inside NumPy and zipfile
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, MemoryError, OverflowError,
                UnicodeError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, NotImplementedError,
                RecursionError)


def _open(path: Path, what: str, error: type[TensorweaveError]):
    if path.is_dir():
        raise error(f"{what}: '{path}' is a folder, not a NumPy file")
    if not path.is_file():
        raise error(f"{what}: file '{path}' does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise error(f"{what}: '{path}' holds a pickled object array, which is refused (loading a pickle runs "
                        "code from the file); save plain numbers with np.save") from None
        raise error(f"{what}: '{path}' is not a readable NumPy file ({exc})") from None
    except _READ_ERRORS as exc:
        raise error(f"{what}: '{path}' is not a readable NumPy file ({str(exc) or type(exc).__name__})") from None


def read_npy(path: str | Path, what: str, error: type[TensorweaveError]) -> np.ndarray:
    """The one array of a .npy file."""
    path = Path(path)
    loaded = _open(path, what, error)
    if not isinstance(loaded, np.ndarray):
        names = ", ".join(loaded.files)
        loaded.close()
        raise error(f"{what}: '{path}' is an .npz archive (arrays: {names or 'none'}); give a .npy file holding one "
                    "array (np.save)")
    return loaded


def read_npz(path: str | Path, what: str, error: type[TensorweaveError]) -> dict[str, np.ndarray]:
    """Every array of an .npz file, by name, read now (a damaged member fails here, naming it)."""
    path = Path(path)
    loaded = _open(path, what, error)
    if isinstance(loaded, np.ndarray):
        raise error(f"{what}: '{path}' is a single .npy array; give an .npz archive with one array per input "
                    "(np.savez(file, name=array, ...))")
    arrays: dict[str, np.ndarray] = {}
    with loaded:
        for name in loaded.files:
            try:
                arrays[name] = loaded[name]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise error(f"{what}: array '{name}' of '{path}' is a pickled object array, which is refused "
                                "(loading a pickle runs code from the file)") from None
                raise error(f"{what}: array '{name}' of '{path}' is damaged ({exc})") from None
            except _READ_ERRORS as exc:
                raise error(f"{what}: array '{name}' of '{path}' is damaged "
                            f"({str(exc) or type(exc).__name__})") from None
    return arrays


def cast_to(array: np.ndarray, dtype: str | np.dtype, what: str, error: type[TensorweaveError]) -> np.ndarray:
    """`array` as `dtype` when that loses nothing but float precision: numbers of the same kind or a
    narrower one (bool -> int -> float), integers within the target's range. Text, objects, structures,
    complex numbers and float -> int are refused, naming both dtypes."""
    target = np.dtype(dtype)
    have = array.dtype
    if have.kind not in "biuf" or not np.can_cast(have, target, "same_kind"):
        raise error(f"{what}: holds {have} values; the input is {target} (give {target} values or a type that "
                    f"converts to it without loss)")
    if target.kind in "iu" and have.kind in "iu" and array.size:
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise error(f"{what}: values {low}..{high} do not fit the input's {target} range "
                        f"{info.min}..{info.max}")
    if target.kind == "f" and have.kind == "f" and target.itemsize < have.itemsize and array.size:
        finite = np.abs(array[np.isfinite(array)])
        if finite.size and finite.max() > np.finfo(target).max:
            raise error(f"{what}: value {finite.max()} is beyond the input's {target} range")
    return array.astype(target)
