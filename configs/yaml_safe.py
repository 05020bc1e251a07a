"""Reading YAML written by users (configs, the ISA description, sweep spaces) without surprises.

`read_yaml` / `parse_yaml` return plain Python data from YAML's safe subset, and turn every way a
file can be bad into the caller's error class naming the file (and the line where YAML knows it):
a missing or unreadable file, bytes that are not UTF-8/UTF-16 text, invalid YAML, a key given twice
in one mapping (YAML would silently keep the last), nesting deeper than any description needs, and
files larger than any description needs.
"""

from __future__ import annotations

import io
import reprlib
from pathlib import Path
from typing import Any

import yaml

from ..errors import TensorweaveError

# Far beyond any config, ISA or sweep space (the ISA description is ~8 KiB and 4 levels deep).
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 50
MAX_VALUES = 200_000    # after expanding aliases: bounds "billion laughs" documents


def _bounded_repr() -> reprlib.Repr:
    shower = reprlib.Repr()
    shower.maxlevel, shower.maxlist, shower.maxtuple, shower.maxdict = 3, 12, 12, 8
    shower.maxstring, shower.maxlong, shower.maxother = 60, 40, 60
    return shower


_SHOWER = _bounded_repr()


def excerpt(value: Any) -> str:
    """repr(value), cut short: values from a hostile file can be huge (long lists, 10,000-digit numbers)."""
    try:
        return _SHOWER.repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"<a {type(value).__name__} too large to show>"


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys and bounding the nesting depth while composing."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` merges: its keys may be overridden, as YAML defines
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKey(key, line, seen[key])
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep=deep)


def parse_yaml(raw: bytes | str, error: type[TensorweaveError], source: str) -> Any:
    """The data of YAML text `raw`; anything wrong raises `error` with a message starting '`source`: '."""
    if len(raw) > MAX_BYTES:
        raise error(f"{source}: {len(raw)} bytes is too large for a description file (at most {MAX_BYTES})")
    if isinstance(raw, bytes) and b"\0" in raw and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{source}: a binary file, not YAML text (UTF-8 or UTF-16 with a byte-order mark)")
    try:
        # a stream with a name: YAML's own messages (marks with line and column) then name the file
        stream = io.BytesIO(raw.encode() if isinstance(raw, str) else raw)
        stream.name = source  # type: ignore[attr-defined]
        loader = _StrictLoader(stream)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _DuplicateKey as exc:
        raise error(f"{source}: line {exc.line}: key {exc.key!r} is given twice (first on line {exc.first_line}); "
                    "allowed: each key once per mapping") from None
    except _TooDeep as exc:
        raise error(f"{source}: line {exc.line}: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise error(f"{source}: not valid YAML: {detail}") from None
    except (UnicodeError, RecursionError, ValueError, OverflowError) as exc:
        # Unicode: undecodable text; the others: scalars the safe constructors cannot represent.
        raise error(f"{source}: not valid YAML ({type(exc).__name__}: {exc})") from None
    if _expanded_size(data) > MAX_VALUES:
        raise error(f"{source}: expands to more than {MAX_VALUES} values (through aliases); "
                    "allowed: a description of ordinary size")
    return data


def _expanded_size(data: Any) -> int:
    """How many values `data` holds counting shared (aliased) parts each time; stops past MAX_VALUES."""
    count, stack = 0, [data]
    while stack and count <= MAX_VALUES:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return count


def read_file_bytes(path: Path, error: type[TensorweaveError], what: str) -> bytes:
    """The bytes of `path`; a missing or unreadable file raises `error` naming `what` and the file."""
    if not path.is_file():
        raise error(f"{what} '{path}' does not exist")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from None


def read_yaml(path: Path, error: type[TensorweaveError], what: str) -> Any:
    """The parsed YAML of `path`; a missing, unreadable or invalid file raises `error` naming the file."""
    return parse_yaml(read_file_bytes(path, error, what), error, str(path))
