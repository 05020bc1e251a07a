"""A sweep's results table, `<output>/results.csv` (and `results.parquet`), one row per finished point.

Kept as CSV (not SQLite): it is the sweep's product, read by spreadsheets, pandas and the report, and
it only ever grows by whole rows, which a line-oriented file does safely:

- Writing: each row is encoded completely first and written with one `write`, then flushed and
  fsynced, so a crash (kill -9, power loss) can tear at most the last line.
- Reading (resume): a record is kept only when it is whole and well-formed: the file's last line
  must end with a newline, every record must have the table's columns, every number must parse,
  every key must be its point's key. Anything else (a torn last row: cut among the numbers or inside
  the quoted config, or damage in the middle) is dropped with a warning in `dropped`, and the file
  is rewritten without it before anything is appended, so the point is simply evaluated again and
  a half-written quoted field can never swallow the next row. A file of another sweep (other
  columns) or one that is not a results table at all is a SweepError naming it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from ..cache import atomic_path, atomic_write
from .evaluate import _cell, columns
from .space import SweepError, SweepSpace, point_key

__all__ = ["ResultsTable", "Row"]

Row = dict[str, Any]
_MAX_INDEX = 2**53
_MAX_LINES = 64  # the most lines one record spans (an error message with newlines)


class ResultsTable:
    """The CSV (and Parquet) results of one sweep, appended one row at a time."""

    def __init__(self, directory: Path, space: SweepSpace, fresh: bool = False):
        self.space = space
        self.columns = columns(space)
        self.csv_path = directory / "results.csv"
        self.parquet_path = directory / "results.parquet"
        self.rows: dict[str, Row] = {}
        self.dropped: list[str] = []   # one warning per record dropped while reading
        directory.mkdir(parents=True, exist_ok=True)
        if self.csv_path.exists() and not fresh:
            self._read()
        else:
            atomic_write(self.csv_path, self._line(self.columns))
            self.parquet_path.unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> None:
        if not self.csv_path.is_file():
            raise SweepError(f"{self.csv_path} is not a file; use another --output")
        try:
            data = self.csv_path.read_bytes()
        except OSError as exc:
            raise SweepError(f"{self.csv_path}: cannot read it ({exc.strerror})") from None
        text = data.decode("utf-8", errors="replace")
        first, _, rest = text.partition("\n")
        try:
            header = next(csv.reader([first.rstrip("\r")], strict=True), [])
        except csv.Error:
            header = []
        if not rest and (header != self.columns or not text.endswith("\n")):
            # empty, or a header cut off before any row was written: nothing is lost by starting again
            atomic_write(self.csv_path, self._line(self.columns))
            if text:
                self.dropped.append(f"{self.csv_path}: the header line was cut off; started the table again")
            return
        if header != self.columns:
            raise SweepError(f"{self.csv_path} has columns {header}, not this space's "
                             f"{self.columns}: it holds another sweep; use --fresh or another --output")
        records, bad = _records(rest, len(self.columns), first_line=2)
        kept: list[Row] = []
        for line, why in bad:
            last = line == len(text.splitlines())
            what = "a torn last row" if last else "a damaged line"
            self.dropped.append(f"{self.csv_path} line {line}: dropped {what} ({why}); its point is evaluated again")
        for line, record in records:
            row, why = self._typed(record)
            if row is None:
                self.dropped.append(f"{self.csv_path} line {line}: dropped a damaged row ({why}); "
                                    "its point is evaluated again")
                continue
            kept.append(row)
        for row in kept:
            self.rows[row["key"]] = row
        if self.dropped:
            atomic_write(self.csv_path, self._line(self.columns)
                         + "".join(self._line([r.get(c, "") for c in self.columns]) for r in kept))

    def _typed(self, record: list[str]) -> tuple[Row | None, str]:
        """The row of a record, or None and why it is not one."""
        if len(record) != len(self.columns):
            return None, f"{len(record)} fields, not {len(self.columns)}"
        raw = dict(zip(self.columns, record, strict=True))
        row: Row = dict(raw)
        try:
            row["index"] = int(raw["index"])
            row["seconds"] = float(raw["seconds"])
            if not 0 <= row["index"] < _MAX_INDEX or not math.isfinite(row["seconds"]):
                return None, f"index {raw['index']} or seconds {raw['seconds']} out of range"
            for name, values in self.space.parameters.items():
                if isinstance(values[0], int):
                    row[name] = int(raw[name])
            failed = bool(raw["error"])
            for metric in self.space.metrics:
                if raw[metric] == "" and failed:
                    row[metric] = None
                else:
                    row[metric] = float(raw[metric])
        except ValueError as exc:
            return None, str(exc)
        point = {}
        for name, values in self.space.parameters.items():
            # list-valued parameters (alu_ops) are stored as their comma-joined text
            matches = [v for v in values if _cell(v) == row[name] or v == row[name]]
            point[name] = matches[0] if matches else row[name]
        if raw["key"] != point_key(point):
            return None, f"key {raw['key']!r} is not the key of the point {point}"
        return row, ""

    # -- writing ------------------------------------------------------------------------------------
    @staticmethod
    def _line(fields: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(fields)
        return buffer.getvalue()

    def add(self, row: Row) -> None:
        self.rows[row["key"]] = row
        line = self._line([row.get(c, "") for c in self.columns]).encode()
        # one write of the whole line, so a crash tears at most this line (dropped on resume)
        fd = os.open(self.csv_path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self._write_parquet()

    def _write_parquet(self) -> None:
        import pyarrow as pa  # a dependency; imported here because it is slow to import
        import pyarrow.parquet as pq
        rows = self.sorted()
        data = {c: [r.get(c) if r.get(c) != "" or c in ("error", "layer_cycles", "config") else None for r in rows]
                for c in self.columns}
        with atomic_path(self.parquet_path) as tmp:
            pq.write_table(pa.table(data), tmp)

    def sorted(self) -> list[Row]:
        return sorted(self.rows.values(), key=lambda r: r["index"])


def _records(text: str, width: int, first_line: int = 1) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """The whole CSV records of `width` fields in `text` with their line numbers, and (line, why) of
    each line that starts none.

    Line by line, so damage costs only the lines it is on: a record is the fewest lines starting at
    the current one that parse as exactly one record of `width` fields ending in a newline (a quoted
    field may hold newlines); a line that starts no such record within `_MAX_LINES` is dropped alone."""
    lines = text.splitlines(keepends=True)
    records: list[tuple[int, list[str]]] = []
    bad: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        record, j, why = None, i, ""
        while j < len(lines) and j - i < _MAX_LINES:
            j += 1
            chunk = "".join(lines[i:j])
            try:
                parsed = list(csv.reader(io.StringIO(chunk, newline=""), strict=True))
            except csv.Error as exc:
                why = str(exc)
                if why == "unexpected end of data":  # a quoted field goes on: try one more line
                    continue
                break
            if not chunk.endswith("\n"):
                why = "the line has no newline: its write was cut off"
            elif len(parsed) != 1:
                why = "not one record"
            elif len(parsed[0]) != width:
                why = f"{len(parsed[0])} fields, not {width}"
            else:
                record = parsed[0]
            break
        if record is None:
            bad.append((first_line + i, why or "a quoted field is never closed"))
            i += 1
        else:
            records.append((first_line + i, record))
            i = j
    return records, bad
