"""An import file as a header and rows of text cells: CSV (delimiter sniffed) or XLSX.

:func:`open_table` reads the header once; :meth:`Table.rows` streams the data rows from the start
of the file each time it is called (the importer reads twice: once to decide the file's number
formats, once to import), one row in memory at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from adsentinel.errors import InputFileError, InputProblem
from adsentinel.ingest.csv_columns import recognised_columns
from adsentinel.ingest.xlsx_rows import iter_xlsx_rows, looks_like_xlsx

#: delimiters tried on the header line, in this order on a tie
DELIMITERS = {",": "',' (comma)", ";": "';' (semicolon)", "\t": "tab"}
_HEADER_HINT = "the first line must name the columns; see the README's import format"
_LONGEST_HEADER = 1 << 20  # characters read to sniff the delimiter


@dataclass(frozen=True)
class Table:
    """A file's header row and how to read its data rows again."""

    path: Path
    headers: list[str]
    header_line: int
    delimiter: str | None  # None: an XLSX workbook

    def describe_reading(self) -> str:
        """How the header was read, for errors about it."""
        if self.delimiter is None:
            return f"the header is row {self.header_line} of the workbook's first sheet"
        others = ", ".join(name for d, name in DELIMITERS.items() if d != self.delimiter)
        return (f"line {self.header_line} was split on {DELIMITERS[self.delimiter]} into "
                f"{len(self.headers)} column(s) ({others} found fewer known columns)")

    def rows(self, on_bytes: Callable[[int], None] | None = None
             ) -> Iterator[tuple[int, list[str]]]:
        """``(line, cells)`` of every non-blank data row after the header."""
        if self.delimiter is None:
            for line, cells in iter_xlsx_rows(self.path):
                if line > self.header_line:
                    yield line, cells
            if on_bytes:
                on_bytes(self.path.stat().st_size)
            return
        with _open_text(self.path, on_bytes) as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            try:
                for _ in range(self.header_line):
                    next(reader, None)
                previous = reader.line_num
                for fields in reader:
                    line, previous = previous + 1, reader.line_num  # a record may span lines
                    if not (fields and fields[0].strip()) and not any(c.strip() for c in fields):
                        continue  # a blank line, or one of empty cells (";;;;")
                    yield line, fields
            except UnicodeDecodeError:
                raise _not_utf8(str(self.path)) from None
            except csv.Error as exc:
                raise _malformed(str(self.path), reader.line_num, exc) from None


def open_table(path: Path) -> Table:
    """Read ``path``'s header (XLSX, or CSV with ``,``, ``;`` or tab, whichever names the most
    known columns). Raises :class:`InputFileError` for an unreadable, empty or non-UTF-8 file."""
    file = str(path)
    try:
        with open(path, "rb") as raw:
            first_bytes = raw.read(4)
    except OSError as exc:
        raise InputFileError([InputProblem(file, None, None, f"cannot open: {exc.strerror}")],
                             hint="check the path") from None
    if looks_like_xlsx(path, first_bytes):
        for line, cells in iter_xlsx_rows(path):
            return Table(path, [str(c) for c in cells], line, None)
        raise InputFileError([InputProblem(file, None, None, "the workbook's first sheet is empty")],
                             hint=_HEADER_HINT)
    with _open_text(path, None) as text:
        try:
            first_line = text.readline(_LONGEST_HEADER)
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
    delimiter = sniff_delimiter(first_line)
    with _open_text(path, None) as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            headers = next(reader)
        except StopIteration:
            raise InputFileError([InputProblem(file, None, None, "file is empty")],
                                 hint=_HEADER_HINT) from None
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
        except csv.Error as exc:
            raise _malformed(file, reader.line_num, exc) from None
        return Table(path, headers, reader.line_num, delimiter)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits ``header_line`` into the most known columns (then the most
    columns; ``,`` on a tie)."""
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            fields = next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])
        except csv.Error:
            continue
        score = (recognised_columns(fields), len(fields))
        if score > best_score:
            best, best_score = delimiter, score
    return best


class _ProgressReader(io.RawIOBase):
    """Binary reader that reports how many bytes have been consumed."""

    def __init__(self, raw: io.BufferedReader, on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count and self._on_bytes:
            self._on_bytes(count)
        return count or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: Path, on_bytes: Callable[[int], None] | None) -> io.TextIOWrapper:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed with the wrapper
    except OSError as exc:
        raise InputFileError([InputProblem(str(path), None, None,
                                           f"cannot open: {exc.strerror}")],
                             hint="check the path") from None
    return io.TextIOWrapper(io.BufferedReader(_ProgressReader(raw, on_bytes), 1 << 20),
                            encoding="utf-8-sig", newline="")


def _malformed(file: str, line: int, exc: csv.Error) -> InputFileError:
    return InputFileError([InputProblem(file, line, None, f"malformed CSV: {exc}")],
                          hint="check the quoting of that line (a field holding the delimiter, "
                               "quotes or line breaks is quoted, its quotes doubled)")


def _not_utf8(file: str) -> InputFileError:
    return InputFileError([InputProblem(file, None, None, "not UTF-8 text")],
                          hint="export the CSV as UTF-8 (Ads Manager: Export > CSV)")
