"""Local number and date formats of Ads Manager exports, decided per file from unambiguous values.

Pure: text in, decisions and canonical text out; reading the file again is the caller's
``scan`` function.

A Brazilian or Spanish export writes ``1.564,97`` (decimal comma, thousands dots), a US one
``1,054.03`` (decimal point, thousands commas). Most values say which one they are (``45,10``,
``0.5``, ``1.564,97``), but ``1.234`` or ``1,054`` alone can be either. The rule:

* a column's format is the format of its first unambiguous value; a column without one takes the
  format of the file's first unambiguous value (in any column);
* a value the decided format cannot read (``1,054.03`` in a decimal-comma column) is refused,
  and so is an ambiguous value in a file where nothing decides: never guessed.

:class:`FormatDecisions` applies it while the file streams: a column is decided by its first
unambiguous value as it goes by, and the first ambiguous value met before its column is decided
triggers one ``scan`` of the whole file (:class:`FormatEvidence`), so a file whose values all say
their format is read once.

Dates are ``YYYY-MM-DD`` (ISO) or slashed: a slashed date whose first number is above 12 proves
day-first (``dd/mm/yyyy``), one whose second is above 12 proves month-first (a US export); the
file's first proof decides, and a file without one is day-first only under a Portuguese or
Spanish date header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

#: the two formats, named by their decimal separator
DECIMAL_POINT = "decimal point"  # 1,054.03
DECIMAL_COMMA = "decimal comma"  # 1.564,97
DAY_FIRST = "dd/mm/yyyy"
MONTH_FIRST = "mm/dd/yyyy"
#: every column that may hold a number (canonical fields of :mod:`csv_columns`)
NUMBER_COLUMNS = ("spend", "impressions", "clicks", "leads", "reach", "conversions", "revenue")

_GROUPED = {  # sign, integer part (plain or grouped in thousands), optional decimals
    DECIMAL_POINT: re.compile(r"^([+-]?)([0-9]+|[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.([0-9]+))?$"),
    DECIMAL_COMMA: re.compile(r"^([+-]?)([0-9]+|[1-9][0-9]{0,2}(?:\.[0-9]{3})+)(?:,([0-9]+))?$"),
}
_THOUSANDS = {DECIMAL_POINT: ",", DECIMAL_COMMA: "."}
_EXAMPLE = {DECIMAL_POINT: "1,054.03", DECIMAL_COMMA: "1.564,97"}
_SLASHED_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")

#: a decision and where it came from: (format or date order, line, the value that showed it)
Decision = tuple[str, int | None, str]


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
    """The formats in which ``text`` reads as a number: one (unambiguous), two (ambiguous: only
    one separator, then exactly three digits, as in ``1.234``; the two readings always differ,
    one below 1,000 and one from 1,000 up), or none (no separator, or not a number: the row
    parser judges it)."""
    if "," not in text and "." not in text:
        return ()
    return tuple(f for f in (DECIMAL_POINT, DECIMAL_COMMA) if _GROUPED[f].match(text))


def _origin(decision: Decision) -> str:
    """Where a decision came from, for an error message."""
    _, line, shown = decision
    return f"as {shown!r} on line {line}" if line is not None else f"from {shown}"


def date_order_of(text: str) -> str | None:
    """The order a slashed date proves (a number above 12 can only be the day), or ``None``."""
    match = _SLASHED_DATE.match(text)
    if match is None:
        return None
    first, second = int(match.group(1)), int(match.group(2))
    return DAY_FIRST if first > 12 else MONTH_FIRST if second > 12 else None


@dataclass
class FormatEvidence:
    """The first unambiguous value of each column, and the first slashed date proving an order,
    across one file (what :class:`FormatDecisions`' ``scan`` returns)."""

    numbers: dict[str, Decision] = field(default_factory=dict)
    date_order: Decision | None = None

    def see_number(self, column: str, text: str, line: int) -> None:
        if column not in self.numbers:
            found = formats_of(text)
            if len(found) == 1:
                self.numbers[column] = (found[0], line, text)

    def see_date(self, text: str, line: int) -> None:
        if self.date_order is None:
            order = date_order_of(text)
            if order:
                self.date_order = (order, line, text)


class FormatDecisions:
    """A file's number formats and date order, decided as it streams (see the module's rule).

    ``scan`` reads the whole file into a :class:`FormatEvidence`; it runs at most once, when a
    value is ambiguous and what streamed so far does not decide it.
    """

    def __init__(self, scan: Callable[[], FormatEvidence], *, day_first_by_default: bool) -> None:
        self._scan = scan
        self._scanned = False
        self._day_first_by_default = day_first_by_default
        self.numbers: dict[str, Decision] = {}
        self.file_format: Decision | None = None
        self.date_order: Decision | None = None
        self._days: dict[str, str] = {}  # slashed dates already read, once the order is known

    def number_text(self, column: str, text: str, line: int) -> tuple[str | None, str | None]:
        """``(canonical text, None)`` or ``(None, why it cannot be read)`` for one cell."""
        decided = self.numbers.get(column)
        if decided is not None:
            chosen = decided[0]
            if chosen == DECIMAL_POINT and "," not in text:
                return text, None  # Python reads it as it is
            value = read_as(text, chosen)
            if value is not None:
                return value, None
            if not formats_of(text):
                return text, None  # not a grouped number at all: the row parser judges it
            return None, (f"{text!r} is not a number in this column's format ({chosen}, "
                          f"{_origin(decided)})")
        found = formats_of(text)
        if not found:
            return text, None
        if len(found) == 1:
            self._decide(column, (found[0], line, text))
            return read_as(text, found[0]), None
        if not self._scanned:
            self._read_whole_file()
            return self.number_text(column, text, line)
        if self.file_format is not None:
            return read_as(text, self.file_format[0]), None
        readings = " or ".join(r for f in found if (r := read_as(text, f)) is not None)
        return None, (f"{text!r} is ambiguous ({readings}) and no value in the file shows its "
                      f"number format; write its decimals ({_EXAMPLE[DECIMAL_COMMA]} or "
                      f"{_EXAMPLE[DECIMAL_POINT]})")

    def date_text(self, text: str, line: int) -> tuple[str | None, str | None]:
        """A slashed date as ``YYYY-MM-DD``; any other text unchanged for the row parser."""
        known = self._days.get(text)
        if known is not None:
            return known, None
        match = _SLASHED_DATE.match(text)
        if match is None:
            return text, None
        first, second, year = (int(g) for g in match.groups())
        proves = date_order_of(text)
        if self.date_order is None and proves:
            self.date_order = (proves, line, text)
        if self.date_order is not None:
            order = self.date_order[0]
            if proves and proves != order:
                return None, (f"{text!r} is not a date in this file's order ({order}, "
                              f"{_origin(self.date_order)})")
        elif first == second:
            order = DAY_FIRST  # the same day either way
        elif not self._scanned:
            self._read_whole_file()
            return self.date_text(text, line)
        elif self._day_first_by_default:
            order = DAY_FIRST
        else:
            return None, (f"{text!r} could be {DAY_FIRST} or {MONTH_FIRST} and no date in the "
                          f"file says which; use YYYY-MM-DD")
        day, month = (first, second) if order == DAY_FIRST else (second, first)
        try:
            iso = date(year, month, day).isoformat()
        except ValueError:
            return None, f"{text!r} is not a date ({order})"
        if self.date_order is not None and len(self._days) < 10_000:
            self._days[text] = iso
        return iso, None

    def _decide(self, column: str, decision: Decision) -> None:
        self.numbers[column] = decision
        if self.file_format is None:
            self.file_format = decision

    def _read_whole_file(self) -> None:
        self._scanned = True
        evidence = self._scan()
        self.numbers = dict(evidence.numbers)
        self.file_format = min(evidence.numbers.values(), key=lambda d: d[1] or 0, default=None)
        self.date_order = evidence.date_order
        if self.file_format is not None:  # no value of the file can decide a column now
            for column in NUMBER_COLUMNS:
                self.numbers.setdefault(column, self.file_format)
        if self.date_order is None and self._day_first_by_default:
            self.date_order = (DAY_FIRST, None, "a Portuguese or Spanish date header")
