"""Reading and validating the rows of an insights CSV, one at a time (streaming).

:func:`iter_insight_rows` yields either a validated :class:`InsightRow` or the
:class:`~adsentinel.errors.InputProblem` list explaining why the line was refused. It never holds
more than one line in memory; duplicate and hierarchy checks across lines happen in the database
(see :mod:`adsentinel.ingest.csv_import`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

from adsentinel.errors import InputFileError, InputProblem
from adsentinel.ingest.csv_columns import COUNT_FIELDS, ColumnLayout, resolve_columns

#: the largest count, and amount of money, one line may hold: far above any ad's day, and the sums
#: over an ad set's or a campaign's ads still fit the database's 64-bit integers
MAX_COUNT = 10**12
MAX_AMOUNT = 10**12
#: the longest text of each field, as long as its database column
MAX_TEXT = {"account_id": 64, "account_name": 200, "campaign_name": 400, "adset_name": 400,
            "ad_name": 400}
_HEADER_HINT = "the first line must name the columns; see the README's import format"


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


class _ProgressReader(io.RawIOBase):
    """Binary reader that reports how many bytes have been consumed."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count and self._on_bytes:
            self._on_bytes(count)
        return count or 0


def iter_insight_rows(
    path: Path, *, on_bytes: Callable[[int], None] | None = None
) -> Iterator[InsightRow | list[InputProblem]]:
    """Yield each data line of ``path`` as a row or as the problems found in it.

    Raises :class:`InputFileError` at once for file-level problems (unreadable file, not UTF-8,
    missing columns), since no line could be read correctly then.
    """
    file = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise InputFileError([InputProblem(file, None, None, f"cannot open: {exc.strerror}")],
                             hint="check the path") from None
    try:
        text = io.TextIOWrapper(io.BufferedReader(_ProgressReader(raw, on_bytes), 1 << 20),
                                encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            headers = next(reader)
        except StopIteration:
            raise InputFileError([InputProblem(file, None, None, "file is empty")],
                                 hint=_HEADER_HINT) from None
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
        except csv.Error as exc:
            raise _malformed(file, reader.line_num, exc) from None
        layout, problems = resolve_columns(headers, file)
        if problems:
            raise InputFileError(problems, hint=_HEADER_HINT)
        parse = _row_parser(layout, file, len(headers))
        try:
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                yield parse(fields, reader.line_num)
        except UnicodeDecodeError:
            raise _not_utf8(file) from None
        except csv.Error as exc:
            raise _malformed(file, reader.line_num, exc) from None
    finally:
        raw.close()


def _malformed(file: str, line: int, exc: csv.Error) -> InputFileError:
    return InputFileError([InputProblem(file, line, None, f"malformed CSV: {exc}")],
                          hint="check the quoting of that line (a field holding commas, quotes "
                               "or line breaks is quoted, its quotes doubled)")


def _not_utf8(file: str) -> InputFileError:
    return InputFileError([InputProblem(file, None, None, "not UTF-8 text")],
                          hint="export the CSV as UTF-8 (Ads Manager: Export > CSV)")


def _row_parser(layout: ColumnLayout, file: str,
                width: int) -> Callable[[list[str], int], InsightRow | list[InputProblem]]:
    """Build the per-line parser once, with every column position resolved up front."""
    pos = layout.position
    p_date, p_campaign, p_adset, p_ad = pos("date"), pos("campaign_id"), pos("adset_id"), pos("ad_id")
    p_spend = pos("spend")
    p_counts = [(name, pos(name)) for name in COUNT_FIELDS]
    optional_text = {name: pos(name) for name in
                     ("account_id", "account_name", "currency", "campaign_name", "adset_name",
                      "ad_name")}
    p_conversions, p_revenue = pos("conversions"), pos("revenue")
    header_currency = layout.currency_from_header

    def text_at(fields: list[str], position: int | None) -> str | None:
        if position is None or position >= len(fields):
            return None
        value = fields[position].strip()
        return value or None

    from_iso = date.fromisoformat
    isfinite = math.isfinite
    p_impressions, p_clicks, p_leads, p_reach = (position for _, position in p_counts)
    p_account, p_account_name = optional_text["account_id"], optional_text["account_name"]
    p_currency = optional_text["currency"]
    p_names = (optional_text["campaign_name"], optional_text["adset_name"],
               optional_text["ad_name"])
    p_texts = (p_account, p_account_name, *p_names)
    text_limits = tuple(MAX_TEXT[name] for name in ("account_id", "account_name", "campaign_name",
                                                    "adset_name", "ad_name"))

    def parse(fields: list[str], line: int) -> InsightRow | list[InputProblem]:
        """Fast path for the common, valid line; anything unusual takes the careful path."""
        try:
            if len(fields) != width:
                raise ValueError
            text = fields[p_date]
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                raise ValueError
            day = from_iso(text)
            campaign, adset, ad = fields[p_campaign], fields[p_adset], fields[p_ad]
            if not (0 < len(campaign) <= 64 and 0 < len(adset) <= 64 and 0 < len(ad) <= 64):
                raise ValueError
            if "\x00" in campaign or "\x00" in adset or "\x00" in ad:
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
            for value, limit in zip(texts, text_limits):
                if value is not None and (len(value) > limit or "\x00" in value):
                    raise ValueError
        except (ValueError, IndexError, TypeError):
            return careful_parse(fields, line)
        return InsightRow(
            line, day, texts[0], texts[1], currency.upper() if currency else None, campaign,
            texts[2], adset, texts[3], ad, texts[4], spend, impressions, clicks, leads, reach,
            None, None)

    def careful_parse(fields: list[str], line: int) -> InsightRow | list[InputProblem]:
        problems: list[InputProblem] = []

        def problem(column: str, message: str) -> None:
            problems.append(InputProblem(file, line, column, message))

        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        day = _parse_day(fields[p_date].strip(), lambda m: problem("date", m))
        ids = {}
        for name, position in (("campaign_id", p_campaign), ("adset_id", p_adset), ("ad_id", p_ad)):
            value = fields[position].strip()
            if not value:
                problem(name, "is empty")
            elif len(value) > 64:
                problem(name, f"is longer than 64 characters ({len(value)})")
            elif "\x00" in value:
                problem(name, "contains a NUL character")
            ids[name] = value
        texts = {}
        for name, position in optional_text.items():
            value = texts[name] = text_at(fields, position)
            if value is not None and name in MAX_TEXT and len(value) > MAX_TEXT[name]:
                problem(name, f"is longer than {MAX_TEXT[name]} characters ({len(value)})")
            elif value is not None and name in MAX_TEXT and "\x00" in value:
                problem(name, "contains a NUL character")
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


def _parse_day(value: str, report: Callable[[str], None]) -> date | None:
    if len(value) == 10 and value[4] in "-/" and value[7] == value[4]:
        try:
            return date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            pass
    report(f"unknown date format {value!r}; expected YYYY-MM-DD")
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
