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
#: the longest text of each field, as long as its database column
MAX_TEXT = {"account_id": 64, "account_name": 200, "campaign_name": 400, "adset_name": 400,
            "ad_name": 400}
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
    numbers = [(name, layout.position(name)) for name in NUMBER_COLUMNS
               if layout.position(name) is not None]
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


def _row_parser(layout: ColumnLayout, file: str, width: int, formats: FormatDecisions
                ) -> Callable[[list[str], int], InsightRow | list[InputProblem] | SkippedLine]:
    """Build the per-line parser once, with every column position resolved up front."""
    pos = layout.position
    p_date, p_campaign, p_adset, p_ad = pos("date"), pos("campaign_id"), pos("adset_id"), pos("ad_id")
    p_date_end = pos("date_end") if layout.dates_are_periods else None
    p_spend = pos("spend")
    p_counts = [(name, pos(name)) for name in COUNT_FIELDS]
    optional_text = {name: pos(name) for name in
                     ("account_id", "account_name", "currency", "campaign_name", "adset_name",
                      "ad_name")}
    p_conversions, p_revenue = pos("conversions"), pos("revenue")
    header_currency = layout.currency_from_header
    localise = _localiser(layout, file, formats)

    def text_at(fields: list[str], position: int | None) -> str | None:
        if position is None or position >= len(fields):
            return None
        value = fields[position].strip()
        return value or None

    from_iso = date.fromisoformat
    isfinite = math.isfinite
    has_control = CONTROL_CHARACTER.search
    p_impressions, p_clicks, p_leads, p_reach = (position for _, position in p_counts)
    p_account, p_account_name = optional_text["account_id"], optional_text["account_name"]
    p_currency = optional_text["currency"]
    p_names = (optional_text["campaign_name"], optional_text["adset_name"],
               optional_text["ad_name"])
    p_texts = (p_account, p_account_name, *p_names)
    text_limits = tuple(MAX_TEXT[name] for name in ("account_id", "account_name", "campaign_name",
                                                    "adset_name", "ad_name"))
    first_day = FIRST_DAY

    def parse(fields: list[str], line: int) -> InsightRow | list[InputProblem] | SkippedLine:
        """Local formats first; then a fast path for the common, valid line, and the careful
        path for anything unusual."""
        fields, problems = localise(fields, line)
        if problems:
            return problems
        try:
            if len(fields) != width or p_date_end is not None:
                raise ValueError
            text = fields[p_date]
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                raise ValueError
            day = from_iso(text)
            campaign, adset, ad = fields[p_campaign], fields[p_adset], fields[p_ad]
            if not (0 < len(campaign) <= 64 and 0 < len(adset) <= 64 and 0 < len(ad) <= 64):
                raise ValueError
            if day < first_day or has_control(campaign + adset + ad):
                raise ValueError
            spend_text = fields[p_spend]
            spend = float(spend_text) if spend_text else 0.0
            impressions = int(fields[p_impressions] or 0)
            clicks = int(fields[p_clicks] or 0)
            leads = int(fields[p_leads] or 0)
            reach = int(fields[p_reach] or 0)
            if (spend < 0 or not isfinite(spend) or impressions < 0 or clicks < 0 or leads < 0
                    or reach < 0 or clicks > impressions or reach > impressions
                    or spend > MAX_AMOUNT or impressions > MAX_COUNT or leads > MAX_COUNT
                    or p_conversions is not None or p_revenue is not None):
                raise ValueError
            currency = (fields[p_currency] if p_currency is not None else None) or header_currency
            if currency is not None and (len(currency) != 3 or not currency.isalpha()
                                         or not currency.isascii()):
                raise ValueError
            if campaign != campaign.strip() or adset != adset.strip() or ad != ad.strip():
                raise ValueError
            texts = [(fields[p].strip() or None) if p is not None else None for p in p_texts]
            for value, limit in zip(texts, text_limits, strict=True):
                if value is not None and (len(value) > limit or has_control(value)):
                    raise ValueError
        except (ValueError, IndexError, TypeError):
            return careful_parse(fields, line)
        return InsightRow(
            line, day, texts[0], texts[1], currency.upper() if currency else None, campaign,
            texts[2], adset, texts[3], ad, texts[4], spend, impressions, clicks, leads, reach,
            None, None)

    def careful_parse(fields: list[str], line: int) -> InsightRow | list[InputProblem] | SkippedLine:
        problems: list[InputProblem] = []

        def problem(column: str, message: str) -> None:
            problems.append(InputProblem(file, line, column, message))

        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        summary = _summary_row(fields, p_date, p_date_end, (p_campaign, p_adset, p_ad))
        if summary:
            return SkippedLine(line, summary)
        day = _parse_day(fields[p_date].strip(), lambda m: problem("date", m))
        if day is not None and p_date_end is not None and fields[p_date_end].strip():
            last = _parse_day(fields[p_date_end].strip(), lambda m: problem("date_end", m))
            if last is not None and last != day:
                problem("date_end", f"the row covers {day} to {last}, not one day; export with "
                                    f"the breakdown by day (Breakdown > By time > Day)")
        ids = {}
        for name, position in (("campaign_id", p_campaign), ("adset_id", p_adset), ("ad_id", p_ad)):
            value = fields[position].strip()
            if not value:
                problem(name, "is empty")
            elif len(value) > 64:
                problem(name, f"is longer than 64 characters ({len(value)})")
            elif control_character_problem(value):
                problem(name, control_character_problem(value))
            ids[name] = value
        texts = {}
        for name, position in optional_text.items():
            value = texts[name] = text_at(fields, position)
            if value is not None and name in MAX_TEXT and len(value) > MAX_TEXT[name]:
                problem(name, f"is longer than {MAX_TEXT[name]} characters ({len(value)})")
            elif value is not None and control_character_problem(value):
                problem(name, control_character_problem(value))
        spend = _parse_money(fields[p_spend], lambda m: problem("spend", m))
        counts = {name: _parse_count(fields[position], lambda m, n=name: problem(n, m))
                  for name, position in p_counts}
        conversions = (None if p_conversions is None or not fields[p_conversions].strip()
                       else _parse_count(fields[p_conversions], lambda m: problem("conversions", m)))
        revenue = (None if p_revenue is None or not fields[p_revenue].strip()
                   else _parse_money(fields[p_revenue], lambda m: problem("revenue", m)))
        impressions, clicks, reach = counts["impressions"], counts["clicks"], counts["reach"]
        if impressions is not None and clicks is not None and clicks > impressions:
            problem("clicks", f"clicks ({clicks}) exceed impressions ({impressions})")
        if impressions is not None and reach is not None and reach > impressions:
            problem("reach", f"reach ({reach}) exceeds impressions ({impressions})")
        currency = texts["currency"] or header_currency
        if currency is not None and (len(currency) != 3 or not currency.isalpha()
                                     or not currency.isascii()):
            problem("currency", f"{currency!r} is not a 3-letter currency code")
        if problems:
            return problems
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
            leads=counts["leads"],
            reach=reach,
            conversions=conversions,
            revenue=revenue,
        )

    return parse


def _localiser(layout: ColumnLayout, file: str, formats: FormatDecisions
               ) -> Callable[[list[str], int], tuple[list[str], list[InputProblem]]]:
    """Rewrite a line's local numbers (``1.564,97``) and slashed dates (``01/10/2026``) to the
    canonical ``1564.97`` and ``2026-10-01``; a value the file's format cannot read is a problem."""
    numbers = [(name, layout.position(name)) for name in NUMBER_COLUMNS
               if layout.position(name) is not None]
    used_dates = ("date", "date_end") if layout.dates_are_periods else ("date",)
    dates = [(name, layout.position(name)) for name in used_dates
             if layout.position(name) is not None]
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
            elif canonical != cell:
                if not copied:
                    fields, copied = list(fields), True
                fields[position] = canonical
        for name, position in dates:
            if position < len(fields) and "/" in fields[position]:
                canonical, why = date_text(fields[position].strip(), line)
                if why:
                    problems.append(InputProblem(file, line, name, why))
                elif canonical != fields[position]:
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
