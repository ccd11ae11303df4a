"""Reading and validating the rows of an insights file (CSV or XLSX), one at a time (streaming).

:func:`iter_insight_rows` yields a validated :class:`InsightRow`, the
:class:`~adsentinel.errors.InputProblem` list explaining why the line was refused, or a
:class:`SkippedLine` (the export's summary row). It never holds more than one line in memory;
duplicate and hierarchy checks across lines happen in the database (see
:mod:`adsentinel.ingest.csv_import`).

Local formats: the file's number formats and date order are decided from its unambiguous values
(:mod:`adsentinel.ingest.number_formats`; the file is read a second time only when an ambiguous
value comes before anything decides it); each line's numbers and dates are rewritten to the
canonical ``1564.97`` / ``YYYY-MM-DD`` before the checks, so ``1.564,97`` and ``1,564.97``
import the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

from adsentinel.errors import InputFileError, InputProblem
from adsentinel.ingest.csv_columns import COUNT_FIELDS, ColumnLayout, resolve_columns
from adsentinel.ingest.number_formats import DECIMAL_POINT, NUMBER_COLUMNS, FormatDecisions, FormatEvidence
from adsentinel.ingest.table_files import Table, open_table
from adsentinel.ingest.xlsx_rows import StoredNumber

#: the largest count, and amount of money, one line may hold: far above any ad's day, and the sums
#: over an ad set's or a campaign's ads still fit the database's 64-bit integers
MAX_COUNT = 10**12
MAX_AMOUNT = 10**12
#: the first day a row may hold (the future is checked per account, in its timezone)
FIRST_DAY = date(1970, 1, 1)
#: the longest campaign, ad set or ad id, as long as its database column (entities.platform_id)
MAX_ID = 64
#: the longest text of each optional field, as long as its database column
MAX_TEXT = {"account_id": 64, "account_name": 200, "campaign_name": 400, "adset_name": 400,
            "ad_name": 400}
#: the optional texts of a line, in the order their problems are told
OPTIONAL_TEXTS = ("account_id", "account_name", "currency", "campaign_name", "adset_name", "ad_name")
#: C0 and C1 control characters (line breaks, NUL, escapes...): refused in ids and names, where a
#: line break would break an alert e-mail's subject or a chat message
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
_HEADER_HINT = "the first line must name the columns; see the README's import format"
_TEXT_HINT = "names and ids are one line of printable text"


@dataclass(slots=True)
class InsightRow:
    """One ad's numbers for one day, as read from line ``line`` of the file."""

    line: int
    day: date
    account_id: str | None
    account_name: str | None
    currency: str | None
    campaign_id: str
    campaign_name: str | None
    adset_id: str
    adset_name: str | None
    ad_id: str
    ad_name: str | None
    spend: float
    impressions: int
    clicks: int
    leads: int
    reach: int
    conversions: int | None
    revenue: float | None


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line read but not imported on purpose (Ads Manager's summary row), and why."""

    line: int
    reason: str


def control_character_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name or id (a control character), or ``None``."""
    found = CONTROL_CHARACTER.search(value)
    if found is None:
        return None
    return f"contains a control character (U+{ord(found.group()):04X}); {_TEXT_HINT}"


def iter_insight_rows(
    path: Path, *, on_bytes: Callable[[int], None] | None = None
) -> Iterator[InsightRow | list[InputProblem] | SkippedLine]:
    """Yield each data line of ``path`` as a row, the problems found in it, or a skipped line.

    Raises :class:`InputFileError` at once for file-level problems (unreadable file, not UTF-8,
    missing columns), since no line could be read correctly then.
    """
    file = str(path)
    table = open_table(path)
    layout, problems = resolve_columns(table.headers, file, table.header_line)
    if problems:
        raise InputFileError(problems, hint=f"{table.describe_reading()}; {_HEADER_HINT}")
    formats = FormatDecisions(lambda: scan_formats(table, layout),
                              day_first_by_default=layout.day_first_dates)
    parse = _row_parser(layout, file, len(table.headers), formats)
    for line, fields in table.rows(on_bytes):
        yield parse(fields, line)


def scan_formats(table: Table, layout: ColumnLayout) -> FormatEvidence:
    """The whole file's first unambiguous value of each number column, and its first date that
    proves an order (see :mod:`adsentinel.ingest.number_formats`)."""
    evidence = FormatEvidence()
    numbers = [(name, position) for name in NUMBER_COLUMNS
               if (position := layout.position(name)) is not None]
    dates = [p for p in (layout.position("date"), layout.position("date_end")) if p is not None]
    for line, fields in table.rows():
        for name, position in numbers:
            if position < len(fields):
                cell = fields[position]
                if ("," in cell or "." in cell) and not isinstance(cell, StoredNumber):
                    evidence.see_number(name, cell.strip(), line)
        for position in dates:
            if position < len(fields) and "/" in fields[position]:
                evidence.see_date(fields[position].strip(), line)
    return evidence


@dataclass(frozen=True, slots=True)
class _Positions:
    """Where each field sits in a line of one file, resolved once from its header.

    The required columns are always there (:func:`resolve_columns` refuses a file without them);
    the optional ones are ``None`` when the file has no such column.
    """

    date: int
    date_end: int | None  # only for Ads Manager's period exports ("Reporting starts/ends")
    campaign: int
    adset: int
    ad: int
    spend: int
    impressions: int
    clicks: int
    leads: int
    reach: int
    texts: tuple[tuple[str, int | None], ...]  # (name, position) of each of OPTIONAL_TEXTS
    conversions: int | None
    revenue: int | None

    @classmethod
    def of(cls, layout: ColumnLayout) -> _Positions:
        def required(name: str) -> int:
            position = layout.position(name)
            assert position is not None, f"resolve_columns lets no file without {name} through"
            return position

        return cls(
            date=required("date"),
            date_end=layout.position("date_end") if layout.dates_are_periods else None,
            campaign=required("campaign_id"), adset=required("adset_id"), ad=required("ad_id"),
            spend=required("spend"), impressions=required("impressions"),
            clicks=required("clicks"), leads=required("leads"), reach=required("reach"),
            texts=tuple((name, layout.position(name)) for name in OPTIONAL_TEXTS),
            conversions=layout.position("conversions"), revenue=layout.position("revenue"))

    @property
    def ids(self) -> tuple[tuple[str, int], ...]:
        return (("campaign_id", self.campaign), ("adset_id", self.adset), ("ad_id", self.ad))

    @property
    def counts(self) -> tuple[tuple[str, int], ...]:
        return (("impressions", self.impressions), ("clicks", self.clicks),
                ("leads", self.leads), ("reach", self.reach))


def is_currency_code(text: str) -> bool:
    """Whether ``text`` reads as a 3-letter currency code (``BRL``, ``usd``)."""
    return len(text) == 3 and text.isalpha() and text.isascii()


def _row_parser(layout: ColumnLayout, file: str, width: int, formats: FormatDecisions
                ) -> Callable[[list[str], int], InsightRow | list[InputProblem] | SkippedLine]:
    """Build the per-line parser once, with every column position resolved up front: local
    formats first; then a fast path for the common, valid line, and the careful path (which
    names each problem) for anything unusual."""
    at = _Positions.of(layout)
    header_currency = layout.currency_from_header
    localise = _localiser(layout, file, formats)
    quick_row = _quick_parser(at, width, header_currency)

    def parse(fields: list[str], line: int) -> InsightRow | list[InputProblem] | SkippedLine:
        fields, problems = localise(fields, line)
        if problems:
            return problems
        return quick_row(fields, line) or _careful_row(fields, line, file, at, width,
                                                        header_currency)

    return parse


def _quick_parser(at: _Positions, width: int, header_currency: str | None
                  ) -> Callable[[list[str], int], InsightRow | None]:
    """The row of a plain, valid line, or ``None`` when anything in it is unusual (then
    :func:`_careful_row` reads it again and says what is wrong). The same rules as the careful
    path, checked all at once with the positions in local variables: most lines of a file take
    this path."""
    p_date, p_campaign, p_adset, p_ad, p_spend = at.date, at.campaign, at.adset, at.ad, at.spend
    p_impressions, p_clicks, p_leads, p_reach = at.impressions, at.clicks, at.leads, at.reach
    positions = dict(at.texts)
    p_currency = positions["currency"]
    p_texts = tuple(positions[name] for name in MAX_TEXT)
    text_limits = tuple(MAX_TEXT.values())
    plain_file = at.date_end is None and at.conversions is None and at.revenue is None
    from_iso = date.fromisoformat
    isfinite = math.isfinite
    has_control = CONTROL_CHARACTER.search
    first_day = FIRST_DAY

    def quick_row(fields: list[str], line: int) -> InsightRow | None:
        if len(fields) != width or not plain_file:
            return None
        try:
            text = fields[p_date]
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                return None
            day = from_iso(text)
            campaign, adset, ad = fields[p_campaign], fields[p_adset], fields[p_ad]
            if not (0 < len(campaign) <= MAX_ID and 0 < len(adset) <= MAX_ID
                    and 0 < len(ad) <= MAX_ID):
                return None
            if day < first_day or has_control(campaign + adset + ad):
                return None
            spend_text = fields[p_spend]
            spend = float(spend_text) if spend_text else 0.0
            impressions = int(fields[p_impressions] or 0)
            clicks = int(fields[p_clicks] or 0)
            leads = int(fields[p_leads] or 0)
            reach = int(fields[p_reach] or 0)
            if (spend < 0 or not isfinite(spend) or impressions < 0 or clicks < 0 or leads < 0
                    or reach < 0 or clicks > impressions or reach > impressions
                    or spend > MAX_AMOUNT or impressions > MAX_COUNT or leads > MAX_COUNT):
                return None
            currency = (fields[p_currency] if p_currency is not None else None) or header_currency
            if currency is not None and not is_currency_code(currency):
                return None
            if campaign != campaign.strip() or adset != adset.strip() or ad != ad.strip():
                return None
            texts = [(fields[p].strip() or None) if p is not None else None for p in p_texts]
            for value, limit in zip(texts, text_limits, strict=True):
                if value is not None and (len(value) > limit or has_control(value)):
                    return None
        except (ValueError, IndexError, TypeError):
            return None
        return InsightRow(
            line, day, texts[0], texts[1], currency.upper() if currency else None, campaign,
            texts[2], adset, texts[3], ad, texts[4], spend, impressions, clicks, leads, reach,
            None, None)

    return quick_row


def _careful_row(fields: list[str], line: int, file: str, at: _Positions, width: int,
                 header_currency: str | None) -> InsightRow | list[InputProblem] | SkippedLine:
    """The row of any line, or every problem found in it, each naming its column."""
    problems: list[InputProblem] = []

    def problem(column: str, message: str) -> None:
        problems.append(InputProblem(file, line, column, message))

    if len(fields) < width:
        fields = fields + [""] * (width - len(fields))
    summary = _summary_row(fields, at.date, at.date_end, (at.campaign, at.adset, at.ad))
    if summary:
        return SkippedLine(line, summary)
    day = _day_of_line(fields, at, problem)
    ids = {name: _checked_id(fields[position].strip(), name, problem) for name, position in at.ids}
    texts = {name: _checked_text(_text_at(fields, position), name, problem)
             for name, position in at.texts}
    currency = texts["currency"] or header_currency
    spend = _parse_money(fields[at.spend], lambda m: problem("spend", m))
    counts = {name: _parse_count(fields[position], partial(problem, name))
              for name, position in at.counts}
    conversions = (None if at.conversions is None or not fields[at.conversions].strip()
                   else _parse_count(fields[at.conversions], lambda m: problem("conversions", m)))
    revenue = (None if at.revenue is None or not fields[at.revenue].strip()
               else _parse_money(fields[at.revenue], lambda m: problem("revenue", m)))
    impressions, clicks, leads, reach = (counts[name] for name in COUNT_FIELDS)
    _check_counts_agree(impressions, clicks, reach, problem)
    if currency is not None and not is_currency_code(currency):
        problem("currency", f"{currency!r} is not a 3-letter currency code")
    if problems:
        return problems
    # no problem: every required value was read (each None above came with its problem)
    assert day is not None and spend is not None
    assert impressions is not None and clicks is not None and leads is not None and reach is not None
    return InsightRow(
        line=line,
        day=day,
        account_id=texts["account_id"],
        account_name=texts["account_name"],
        currency=currency.upper() if currency else None,
        campaign_id=ids["campaign_id"],
        campaign_name=texts["campaign_name"],
        adset_id=ids["adset_id"],
        adset_name=texts["adset_name"],
        ad_id=ids["ad_id"],
        ad_name=texts["ad_name"],
        spend=spend,
        impressions=impressions,
        clicks=clicks,
        leads=leads,
        reach=reach,
        conversions=conversions,
        revenue=revenue,
    )


def _text_at(fields: list[str], position: int | None) -> str | None:
    """The stripped text at ``position``, ``None`` when empty or when the file has no such column."""
    if position is None or position >= len(fields):
        return None
    return fields[position].strip() or None


def _day_of_line(fields: list[str], at: _Positions, problem: Callable[[str, str], None]
                 ) -> date | None:
    """The line's day; a period export's row must cover that one day."""
    day = _parse_day(fields[at.date].strip(), lambda m: problem("date", m))
    if day is not None and at.date_end is not None and fields[at.date_end].strip():
        last = _parse_day(fields[at.date_end].strip(), lambda m: problem("date_end", m))
        if last is not None and last != day:
            problem("date_end", f"the row covers {day} to {last}, not one day; export with "
                                f"the breakdown by day (Breakdown > By time > Day)")
    return day


def _checked_id(value: str, name: str, problem: Callable[[str, str], None]) -> str:
    """A campaign, ad set or ad id, its problem reported (empty, too long, a control character)."""
    if not value:
        problem(name, "is empty")
    elif len(value) > MAX_ID:
        problem(name, f"is longer than {MAX_ID} characters ({len(value)})")
    elif (why := control_character_problem(value)) is not None:
        problem(name, why)
    return value


def _checked_text(value: str | None, name: str, problem: Callable[[str, str], None]
                  ) -> str | None:
    """An optional text, its problem reported (too long, a control character)."""
    if value is None:
        return None
    if name in MAX_TEXT and len(value) > MAX_TEXT[name]:
        problem(name, f"is longer than {MAX_TEXT[name]} characters ({len(value)})")
    elif (why := control_character_problem(value)) is not None:
        problem(name, why)
    return value


def _check_counts_agree(impressions: int | None, clicks: int | None, reach: int | None,
                        problem: Callable[[str, str], None]) -> None:
    """Clicks and reach cannot exceed impressions."""
    if impressions is not None and clicks is not None and clicks > impressions:
        problem("clicks", f"clicks ({clicks}) exceed impressions ({impressions})")
    if impressions is not None and reach is not None and reach > impressions:
        problem("reach", f"reach ({reach}) exceeds impressions ({impressions})")


def _localiser(layout: ColumnLayout, file: str, formats: FormatDecisions
               ) -> Callable[[list[str], int], tuple[list[str], list[InputProblem]]]:
    """Rewrite a line's local numbers (``1.564,97``) and slashed dates (``01/10/2026``) to the
    canonical ``1564.97`` and ``2026-10-01``; a value the file's format cannot read is a problem."""
    numbers = [(name, position) for name in NUMBER_COLUMNS
               if (position := layout.position(name)) is not None]
    used_dates = ("date", "date_end") if layout.dates_are_periods else ("date",)
    dates = [(name, position) for name in used_dates
             if (position := layout.position(name)) is not None]
    number_text, date_text = formats.number_text, formats.date_text

    def localise(fields: list[str], line: int) -> tuple[list[str], list[InputProblem]]:
        decided = formats.numbers
        problems: list[InputProblem] = []
        copied = False
        for name, position in numbers:
            if position >= len(fields):
                continue
            cell = fields[position]
            if "," not in cell and ("." not in cell or (
                    name in decided and decided[name][0] == DECIMAL_POINT)):
                continue  # nothing to rewrite: Python reads it as it is
            if isinstance(cell, StoredNumber):
                continue
            canonical, why = number_text(name, cell.strip(), line)
            if why:
                problems.append(InputProblem(file, line, name, why))
            elif canonical is not None and canonical != cell:  # (None only with a why)
                if not copied:
                    fields, copied = list(fields), True
                fields[position] = canonical
        for name, position in dates:
            if position < len(fields) and "/" in fields[position]:
                canonical, why = date_text(fields[position].strip(), line)
                if why:
                    problems.append(InputProblem(file, line, name, why))
                elif canonical is not None and canonical != fields[position]:
                    if not copied:
                        fields, copied = list(fields), True
                    fields[position] = canonical
        return fields, problems

    return localise


def _summary_row(fields: list[str], p_date: int, p_date_end: int | None,
                 id_positions: tuple[int, int, int]) -> str | None:
    """Why this line is the export's summary row (Ads Manager's "Include summary row": no
    campaign, ad set or ad id, and no single day, or a cell reading "Total"), or ``None``."""
    if any(fields[p].strip() for p in id_positions):
        return None
    day = fields[p_date].strip()
    if not day:
        return "summary row: no ids and no day"
    if p_date_end is not None and fields[p_date_end].strip() not in ("", day):
        return "summary row: no ids, and it covers several days"
    if any(cell.strip().casefold().startswith(("total", "resultados totais", "resultados totales"))
           for cell in fields):
        return "summary row: no ids, and a cell reads 'Total'"
    return None


def _parse_day(value: str, report: Callable[[str], None]) -> date | None:
    if len(value) == 10 and value[4] in "-/" and value[7] == value[4]:
        try:
            day = date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            pass
        else:
            if day >= FIRST_DAY:
                return day
            report(f"{value} is before {FIRST_DAY}; dates run from {FIRST_DAY} to today")
            return None
    report(f"unknown date format {value!r}; expected YYYY-MM-DD or dd/mm/yyyy")
    return None


def _parse_money(value: str, report: Callable[[str], None]) -> float | None:
    text = value.strip()
    if not text:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        report(f"{text!r} is not a number")
        return None
    if not math.isfinite(number):
        report(f"{text!r} is not a finite number")
        return None
    if number < 0:
        report(f"is negative ({text})")
        return None
    if number > MAX_AMOUNT:
        report(f"{text!r} is too large (at most {MAX_AMOUNT:,})")
        return None
    return number


def _parse_count(value: str, report: Callable[[str], None]) -> int | None:
    text = value.strip()
    if not text:
        return 0  # Ads Manager leaves zero counts blank
    number: int | float
    if text.isascii() and text.isdigit() and len(text) <= 13:  # ("²".isdigit() is true too)
        number = int(text)
    else:
        try:
            number = float(text)
        except ValueError:
            report(f"{text!r} is not a number")
            return None
    if number < 0:
        report(f"is negative ({text})")
    elif number > MAX_COUNT:
        report(f"{text!r} is too large (at most {MAX_COUNT:,})")
    elif not float(number).is_integer():
        report(f"{text!r} is not a whole number")
    else:
        return int(number)
    return None
