"""Rows of an XLSX export (Ads Manager: Export > .xlsx), read with openpyxl's streaming
read-only mode: one row in memory at a time, whatever the workbook's size.

Cells come out as text, like a CSV's: a number the workbook stores as a number becomes a
:class:`StoredNumber` (its value in Python's notation, with no local format to decide), a date
cell ``YYYY-MM-DD``, an empty cell ``''``. Lines are the sheet's row numbers.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from adsentinel.errors import InputFileError, InputProblem

XLSX_MAGIC = b"PK\x03\x04"  # a zip archive, which an XLSX workbook is
XLSX_SUFFIXES = (".xlsx", ".xlsm")


class StoredNumber(str):
    """A number cell of a workbook, as canonical text (``'1564.97'``)."""


def looks_like_xlsx(path: Path, first_bytes: bytes) -> bool:
    return path.suffix.lower() in XLSX_SUFFIXES or first_bytes.startswith(XLSX_MAGIC)


def iter_xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells)`` of the workbook's first sheet, skipping empty rows."""
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    file = str(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise InputFileError([InputProblem(file, None, None,
                                           f"not a readable XLSX workbook ({exc})")],
                             hint="export again from Ads Manager as .xlsx, or as CSV") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        raise InputFileError([InputProblem(file, None, None,
                                           f"not a readable XLSX workbook "
                                           f"({type(exc).__name__}: {exc})")],
                             hint="export again from Ads Manager as .xlsx, or as CSV") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            while cells and not cells[-1].strip():
                cells.pop()
            if cells:
                yield number, cells
    except Exception as exc:  # noqa: BLE001 - a damaged sheet raises zip, zlib, XML errors...
        raise InputFileError([InputProblem(file, None, None,
                                           f"damaged XLSX workbook ({type(exc).__name__}: {exc})")],
                             hint="export again from Ads Manager as .xlsx, or as CSV") from None
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return StoredNumber(value)
    if isinstance(value, float):
        return StoredNumber(repr(value) if not value.is_integer() or abs(value) >= 1e15
                            else int(value))
    return str(value)
