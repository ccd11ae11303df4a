"""Local number and date formats of Ads Manager exports, decided per file from unambiguous values.

Pure: text in, decisions and canonical text out, no I/O.

A Brazilian or Spanish export writes ``1.564,97`` (decimal comma, thousands dots), a US one
``1,054.03`` (decimal point, thousands commas). Most values say which one they are (``45,10``,
``0.5``, ``1.564,97``), but ``1.234`` or ``1,054`` alone can be either. So a first pass over the
file collects, per number column, the first line of each *decisive* value
(:class:`FormatEvidence`); :func:`decide_number_formats` then fixes each column's format from its
own evidence, or else from the whole file's; a value the decided format cannot read, and an
ambiguous value in a column whose format nothing decides, is refused, never guessed.

Dates are ``YYYY-MM-DD`` (ISO) or ``dd/mm/yyyy``; a slashed date whose first number is above 12
proves day-first, one whose second is above 12 proves month-first (a US export), and a file
with neither takes day-first only from a Portuguese or Spanish date header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

#: the two formats, named by their decimal separator
DECIMAL_POINT = "decimal point"  # 1,054.03
DECIMAL_COMMA = "decimal comma"  # 1.564,97
DAY_FIRST = "dd/mm/yyyy"
MONTH_FIRST = "mm/dd/yyyy"

_GROUPED = {  # sign, integer part (plain or grouped in thousands), optional decimals
    DECIMAL_POINT: re.compile(r"^([+-]?)([0-9]+|[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.([0-9]+))?$"),
    DECIMAL_COMMA: re.compile(r"^([+-]?)([0-9]+|[1-9][0-9]{0,2}(?:\.[0-9]{3})+)(?:,([0-9]+))?$"),
}
_THOUSANDS = {DECIMAL_POINT: ",", DECIMAL_COMMA: "."}
_EXAMPLE = {DECIMAL_POINT: "1,054.03", DECIMAL_COMMA: "1.564,97"}
_SLASHED_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")


def read_as(text: str, number_format: str) -> str | None:
    """``text`` as Python number text (``'1564.97'``) if it is a number in ``number_format``,
    else ``None``."""
    match = _GROUPED[number_format].match(text)
    if match is None:
        return None
    sign, whole, decimals = match.groups()
    whole = whole.replace(_THOUSANDS[number_format], "")
    return f"{sign}{whole}.{decimals}" if decimals is not None else f"{sign}{whole}"


def formats_of(text: str) -> tuple[str, ...]:
    """The formats in which ``text`` reads as a number *with different values*: one format
    (decisive), two (ambiguous, like ``1.234``), or none (no separator, or not a number: the
    value reads the same either way, and the row parser judges it)."""
    if "," not in text and "." not in text:
        return ()
    readings = {f: read_as(text, f) for f in (DECIMAL_POINT, DECIMAL_COMMA)}
    valid = [f for f, value in readings.items() if value is not None]
    if len(valid) == 2 and float(readings[DECIMAL_POINT]) == float(readings[DECIMAL_COMMA]):
        return ()
    return tuple(valid)


@dataclass
class FormatEvidence:
    """First line (and value) of each format seen decisively, per column, across one file."""

    numbers: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    dates: dict[str, tuple[int, str]] = field(default_factory=dict)

    def see_number(self, column: str, text: str, line: int) -> None:
        found = formats_of(text)
        if len(found) == 1:
            self.numbers.setdefault(column, {}).setdefault(found[0], (line, text))

    def see_date(self, text: str, line: int) -> None:
        match = _SLASHED_DATE.match(text)
        if match:
            first, second = int(match.group(1)), int(match.group(2))
            order = DAY_FIRST if first > 12 else MONTH_FIRST if second > 12 else None
            if order:
                self.dates.setdefault(order, (line, text))


@dataclass(frozen=True)
class FileFormats:
    """The number format of each column (``None``: undecided) and the order of slashed dates.

    ``number_conflicts`` names, for a column whose values prove both formats, the two lines.
    """

    numbers: dict[str, str | None]
    number_conflicts: dict[str, str]
    date_order: str | None
    date_conflict: str | None

    def number_text(self, column: str, text: str) -> tuple[str | None, str | None]:
        """``(canonical text, None)`` or ``(None, why it cannot be read)`` for one cell."""
        found = formats_of(text)
        if not found:
            return text, None
        conflict = self.number_conflicts.get(column)
        if conflict:
            return None, f"{text!r}: this column mixes number formats ({conflict})"
        chosen = self.numbers.get(column)
        if chosen is None:
            if len(found) == 1:
                return read_as(text, found[0]), None
            readings = " or ".join(read_as(text, f) for f in found)
            return None, (f"{text!r} is ambiguous ({readings}) and no other value in the file "
                          f"shows its number format; write it with its decimals "
                          f"({_EXAMPLE[DECIMAL_COMMA]} or {_EXAMPLE[DECIMAL_POINT]})")
        if chosen not in found:
            return None, (f"{text!r} is not a number in this file's format ({chosen}, "
                          f"e.g. {_EXAMPLE[chosen]})")
        return read_as(text, chosen), None

    def date_text(self, text: str) -> tuple[str | None, str | None]:
        """A slashed date as ``YYYY-MM-DD``; any other text unchanged for the row parser."""
        match = _SLASHED_DATE.match(text)
        if match is None:
            return text, None
        first, second, year = (int(g) for g in match.groups())
        if self.date_conflict:
            return None, f"{text!r}: this file mixes date orders ({self.date_conflict})"
        order = self.date_order
        if order is None:
            if first == second:
                order = DAY_FIRST
            elif first > 12 or second > 12:
                order = DAY_FIRST if first > 12 else MONTH_FIRST
            else:
                return None, (f"{text!r} could be {DAY_FIRST} or {MONTH_FIRST} and no other date "
                              f"in the file says which; use YYYY-MM-DD")
        day, month = (first, second) if order == DAY_FIRST else (second, first)
        try:
            return date(year, month, day).isoformat(), None
        except ValueError:
            return None, f"{text!r} is not a date ({order})"


def decide_formats(evidence: FormatEvidence, *, day_first_by_default: bool) -> FileFormats:
    """Each column's format from its own decisive values, else from the file's, else undecided."""
    numbers: dict[str, str | None] = {}
    conflicts: dict[str, str] = {}
    for column, seen in evidence.numbers.items():
        if len(seen) == 1:
            numbers[column] = next(iter(seen))
        else:
            conflicts[column] = _conflict(seen)
    file_formats = set(numbers.values())
    default = file_formats.pop() if len(file_formats) == 1 else None
    undecided = {column: default for column in _ALL_COLUMNS if column not in numbers
                 and column not in conflicts}
    date_conflict = _conflict(evidence.dates) if len(evidence.dates) > 1 else None
    order = (next(iter(evidence.dates)) if len(evidence.dates) == 1 else
             DAY_FIRST if not evidence.dates and day_first_by_default else None)
    return FileFormats({**undecided, **numbers}, conflicts, order, date_conflict)


def _conflict(seen: dict[str, tuple[int, str]]) -> str:
    return " and ".join(f"line {line} {text!r} has a {kind}" if "decimal" in kind else
                        f"line {line} {text!r} is {kind}" for kind, (line, text) in seen.items())


#: every column that may hold a number (the canonical fields of :mod:`csv_columns`)
_ALL_COLUMNS = ("spend", "impressions", "clicks", "leads", "reach", "conversions", "revenue")
NUMBER_COLUMNS = _ALL_COLUMNS
