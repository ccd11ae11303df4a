"""Hostile inputs for property-based tests and ``reliability/input_fuzz.py``.

Two targets, each with a hypothesis strategy of cases and a checker that runs one case and says
what happened:

* the CSV / XLSX importer: :func:`csv_cases` draws whole files (English, Portuguese and Spanish
  header aliases and mistakes; ``,`` ``;`` or tab; plain, US and Brazilian numbers; days from
  year 1 to 9999 as ISO, ``dd/mm/yyyy`` or ``mm/dd/yyyy``; XLSX workbooks; encodings, BOM, CRLF,
  quoting, hostile cells, control characters, summary rows, duplicates, hierarchy conflicts,
  future days) and, for 1 in 8, an ``--account`` name; :class:`CsvImportTrials` imports them
  into one database, *reused* across cases, compares the importer's tables before and after
  each refused import and, given settings, trains, detects and charts after each accepted one;
* the settings: :func:`settings_environments` draws ``ADSENTINEL_*`` variables for every field of
  :class:`~adsentinel.config.Settings`; :func:`check_settings_environment` loads them the way the
  CLI does (:func:`~adsentinel.config.load_settings`).

An :class:`Outcome` is ``accepted`` (and the stored or loaded values obey the documented rules),
``refused`` (the project's located error), or ``crash`` (any other exception, an unclear error, a
half-written database, or accepted values that break the rules).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import annotated_types
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from adsentinel.config import ENV_PREFIX, Settings, load_settings
from adsentinel.db.models import Base
from adsentinel.errors import ConfigError, InputFileError
from adsentinel.ingest.csv_columns import ALIASES, REQUIRED, normalise_header
from adsentinel.ingest.csv_import import import_insights_csv

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TODAY = NOW.date()  # accounts the importer creates are on UTC


@dataclass(frozen=True)
class Outcome:
    """What one case did: ``accepted``, ``refused`` or ``crash`` (with what went wrong)."""

    kind: str
    detail: str = ""


# ---------------------------------------------------------------------------------------------
# CSV and XLSX importer

#: the small world most rows come from, so that imports overlap, restate and conflict
ACCOUNTS = {"act_1": "Acme", "act_2": "Beta"}
ADS = {"a1": ("s1", "c1"), "a2": ("s1", "c1"), "a3": ("s2", "c1"), "a4": ("s3", "c2")}
DAYS = [date(2026, 11, d) for d in range(19, 27)]  # the 25th is today, the 26th future
OPTIONAL = ("account_name", "currency", "campaign_name", "adset_name", "ad_name", "conversions",
            "revenue")
#: tables the importer writes; the others must not change either (compared by row count)
IMPORT_TABLES = ("ad_accounts", "entities", "daily_insights")
#: how a file writes its numbers and dates (Ads Manager exports of each country, and XLSX)
STYLES = ("plain", "plain", "plain", "us", "pt", "pt", "xlsx")
DELIMITERS = {"plain": (",", ",", "\t", ";"), "us": (",", "\t"), "pt": (";", ";", ",", "\t"),
              "xlsx": (",",)}
NUMBER_FIELDS = ("spend", "impressions", "clicks", "leads", "reach", "conversions", "revenue")

HOSTILE_CELLS = (
    "", " ", "0", "-0", "-1", "1.5", "1e3", "1e300", "1e400", "9" * 25, "9" * 5000, "nan", "inf",
    "-inf", "²", "١٢", "1_000", "0x10", "abc", "\x00", "a\x00b", "x" * 65, "y" * 201, "z" * 401,
    "2026-W47-1", "2026-02-30", "2026/11/20", "20261120", "0000-01-01", "9999-12-31",
    "２０２６-11-20", "ßab", "usd", "US", "€€€", '"', "'", "\r", "\n", ",", ";", "é", "\ufeff",
    "\u202e", "🙂🙂🙂", "act_1", "act_2", "a1", "s2", "c2", "1.234", "1,234", "1.234,56",
    "1,234.56", "1.2.3", "1,2,3", "12,5", "0,5", ",5", "1.", "1,", "01/02/2026", "13/02/2026",
    "02/13/2026", "31/02/2026", "1/1/1970", "31/12/1969", "Total", "Resultados totais", "\t",
    "a\nb", "a\rb", "\x85", "\x1b[31m", "\x7f",
)
HOSTILE_TEXT = ("a\x00b", "\x00", "x" * 65, "y" * 201, "z" * 401, "ßab", "ǆxy", "€€€", "us",
                "\u202e", "🙂🙂🙂", "  ", "act_1", "Acme", "Beta", "Ad\nSubject: x", "a\rb",
                "a\tb", "\x1b[2J", "a\x85b", "a\x9fb", "Total")
hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=500))
TEXT_FIELDS = ("account_id", "account_name", "currency", "campaign_id", "campaign_name", "adset_id",
               "adset_name", "ad_id", "ad_name")
hostile_cell = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
    st.text(max_size=12),
)
#: any day of the calendar, written as an export might
any_day = st.dates()  # 0001-01-01 .. 9999-12-31


@dataclass(frozen=True)
class CsvCase:
    """One file's bytes (CSV, or an XLSX workbook when ``kind == "xlsx"``), imported with
    ``skip_invalid`` or not, into ``account`` (``--account``) or the accounts the file names."""

    data: bytes
    skip_invalid: bool = False
    account: str | None = None
    kind: str = "csv"
    delimiter: str = ","


def _header_text(draw, field: str) -> str:
    choices = list(ALIASES[field]) + (
        ["Amount spent (BRL)", "amount spent (usd)", "Valor usado (BRL)", "Importe gastado (EUR)"]
        if field == "spend" else [])
    choices += {"date": ["Día", "Início dos relatórios"], "campaign_id": [
        "Identificação da campanha"], "impressions": ["Impressões"]}.get(field, [])
    alias = draw(st.sampled_from(choices))
    style = draw(st.sampled_from(["lower", "upper", "title", "padded", "as is"]))
    return {"lower": alias.lower(), "upper": alias.upper(), "title": alias.title(),
            "padded": f"  {alias.replace(' ', '  ')} ", "as is": alias}[style]


def _day_text(draw, day: date, style: str) -> str:
    """``day`` as ISO, ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (refused or read by the file's order)."""
    form = draw(st.sampled_from(["iso"] * 4 + ["dmy", "dmy", "mdy"])) if style != "plain" else \
        draw(st.sampled_from(["iso"] * 9 + ["dmy"]))
    if form == "dmy":
        return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
    if form == "mdy":
        return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    return day.isoformat()


def _number_text(draw, value: float, style: str, *, money: bool) -> str:
    """A number as the file's style writes it: ``1234.50``, ``1,234.50`` or ``1.234,50``."""
    text = f"{value:,.2f}" if money else f"{int(value):,}"
    if style == "pt":
        return text.replace(",", "_").replace(".", ",").replace("_", ".")
    if style == "us" or (style == "xlsx" and draw(st.booleans())):
        return text
    return text.replace(",", "")


def _row_values(draw, account: str, style: str) -> dict[str, str]:
    ad = draw(st.sampled_from(sorted(ADS)))
    adset, campaign = ADS[ad]
    if draw(st.integers(0, 24)) == 0:  # the ad under another ad set: refused
        adset = draw(st.sampled_from(["s1", "s2", "s3"]))
    impressions = draw(st.integers(0, 100_000))
    clicks = draw(st.integers(0, impressions))
    cents = draw(st.integers(0, 10**7))
    day = draw(st.one_of(st.sampled_from(DAYS[:-1]), st.sampled_from(DAYS[:-1]), any_day))
    number = lambda value, money=False: _number_text(draw, value, style, money=money)  # noqa: E731
    return {
        "date": _day_text(draw, day, style), "account_id": account,
        "account_name": ACCOUNTS.get(account, account), "currency": draw(
            st.sampled_from(["USD", "brl", "", "EUR"])),
        "campaign_id": campaign, "campaign_name": f"Campaign {campaign}",
        "adset_id": adset, "adset_name": f"Ad set {adset}", "ad_id": ad, "ad_name": f"Ad {ad}",
        "spend": number(cents / 100, True), "impressions": number(impressions),
        "clicks": draw(st.sampled_from([number(clicks), "" if clicks == 0 else number(clicks)])),
        "leads": number(draw(st.integers(0, clicks))),
        "reach": number(draw(st.integers(0, impressions))),
        "conversions": draw(st.sampled_from(["", number(clicks // 2)])),
        "revenue": draw(st.sampled_from(["", number(cents / 50, True)])),
    }


def _mutate_row(draw, values: dict[str, str]) -> None:
    """Break a documented rule on this row (or keep it valid)."""
    kind = draw(st.sampled_from(["cell", "cell", "text", "text", "clicks", "reach", "negative",
                                 "huge", "future", "date", "summary", "none"]))
    impressions = int(float(values["impressions"].replace(",", "").replace(".", "") or 0))
    if kind == "future":
        values["date"] = DAYS[-1].isoformat()
    elif kind == "date":  # any day of the calendar (1 in 4 before 1970 or after today), or junk
        values["date"] = draw(st.one_of(
            any_day.map(date.isoformat), any_day.map(lambda d: d.strftime("%d/%m/%Y")),
            st.dates(max_value=date(1969, 12, 31)).map(date.isoformat), st.text(max_size=12)))
    elif kind == "summary":  # Ads Manager's summary row: no ids
        for field in ("campaign_id", "adset_id", "ad_id"):
            values[field] = ""
        values["date"] = draw(st.sampled_from(["", values["date"], "Total"]))
    elif kind == "text":
        values[draw(st.sampled_from(TEXT_FIELDS))] = draw(hostile_text)
    elif kind == "cell":
        values[draw(st.sampled_from(sorted(values)))] = draw(hostile_cell)
    elif kind == "clicks":
        values["clicks"] = str(impressions + draw(st.integers(1, 10**6)))
    elif kind == "reach":
        values["reach"] = str(impressions + draw(st.integers(1, 10**6)))
    elif kind == "negative":
        values[draw(st.sampled_from(["spend", "impressions", "clicks", "leads", "reach"]))] = (
            f"-{draw(st.integers(1, 10**6))}")
    elif kind == "huge":
        values[draw(st.sampled_from(["spend", "impressions", "reach", "revenue", "conversions"]))] = (
            draw(st.sampled_from(["1" + "0" * draw(st.integers(12, 40)), "1e308", "1.7e308"])))


@st.composite
def csv_cases(draw) -> CsvCase:
    """A whole input file: mostly well-formed Meta / canonical exports (English, Portuguese,
    Spanish headers; US, Brazilian or plain numbers; ``,`` ``;`` or tab; CSV or XLSX) with a
    few things wrong."""
    shape = draw(st.integers(0, 39))
    if shape == 0:
        return CsvCase(draw(st.binary(max_size=300)), draw(st.booleans()))
    if shape == 1:
        return CsvCase(draw(st.sampled_from([b"", b"\n", b"\r\n", b"\xef\xbb\xbf", b",,,\n",
                                             b";;;\n", b"PK\x03\x04junk"])))
    style = draw(st.sampled_from(STYLES))
    delimiter = draw(st.sampled_from(DELIMITERS[style]))

    # header: required columns, account id (usually), some optional ones, in any order
    fields = list(REQUIRED) + (["account_id"] if draw(st.integers(0, 14)) else [])
    fields += draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=len(OPTIONAL)))
    fields = list(draw(st.permutations(fields)))
    header = [_header_text(draw, field) for field in fields]
    mistake = draw(st.sampled_from([None] * 6 + ["drop", "duplicate", "unknown", "rename",
                                                 "empty"]))
    if mistake == "drop":
        at = draw(st.integers(0, len(fields) - 1))
        del fields[at], header[at]
    elif mistake == "duplicate":
        at = draw(st.integers(0, len(fields) - 1))
        fields.append(fields[at])
        header.append(draw(st.sampled_from([header[at], _header_text(draw, fields[at])])))
    elif mistake in ("unknown", "rename", "empty"):
        at = draw(st.integers(0, len(fields) - 1))
        name = "" if mistake == "empty" else draw(st.one_of(st.just("notes"), hostile_cell))
        if mistake == "unknown":
            fields.append("-")
            header.append(name)
        else:
            fields[at], header[at] = "-", name

    # rows: one account (sometimes two), a few ads and days, some rules broken
    accounts = draw(st.sampled_from([["act_1"], ["act_2"], ["act_1", "act_2"], ["act_9"]]))
    lines: list[list[str]] = []
    for _ in range(draw(st.integers(0, 8))):
        values = _row_values(draw, draw(st.sampled_from(accounts)), style)
        if draw(st.integers(0, 2)) == 0:
            _mutate_row(draw, values)
        cells = [values[field] if field in values else draw(hostile_cell) for field in fields]
        width = draw(st.sampled_from(["same"] * 12 + ["short", "long", "blank"]))
        if width == "short" and cells:
            cells = cells[:draw(st.integers(0, len(cells) - 1))]
        elif width == "long":
            cells += [draw(hostile_cell)]
        elif width == "blank":
            cells = [] if draw(st.booleans()) else [""] * len(cells)
        lines.append(cells)
    if lines and draw(st.integers(0, 3)) == 0:  # the same ad and day again, same or not
        again = list(draw(st.sampled_from(lines)))
        if again and draw(st.booleans()):
            at = draw(st.integers(0, len(again) - 1))
            again[at] = draw(st.sampled_from(["0", "1", "7", again[at]]))
        lines.insert(draw(st.integers(0, len(lines))), again)

    skip_invalid = draw(st.integers(0, 5)) == 0
    account = None
    if draw(st.integers(0, 7)) == 0:
        account = draw(st.one_of(st.sampled_from(["Acme", "Beta", "New Co"]), hostile_text,
                                 st.just("caf\udce9")))
    if style == "xlsx":
        return CsvCase(_workbook(draw, header, lines), skip_invalid, account, kind="xlsx")
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    buffer = io.StringIO()
    if draw(st.integers(0, 9)):
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator=ending)
        writer.writerow(header)
        writer.writerows(lines)
    else:  # joined without quoting: delimiters and line breaks in cells break the structure
        buffer.write(ending.join(delimiter.join(cells) for cells in [header, *lines]) + ending)
    if draw(st.integers(0, 5)) == 0:  # the trailing blank lines of an export
        buffer.write(ending * draw(st.integers(1, 3)))
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = buffer.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data = data[:draw(st.integers(0, len(data)))] + draw(st.binary(max_size=8))
    return CsvCase(data, skip_invalid=skip_invalid, account=account, delimiter=delimiter)


def _workbook(draw, header: list[str], lines: list[list[str]]) -> bytes:
    """The rows as an XLSX workbook: numbers and dates sometimes stored as typed cells."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(text: str) -> object:
        kind = draw(st.sampled_from(["text", "typed", "typed"]))
        if kind == "typed":
            try:
                number = float(text)
                if math.isfinite(number) and abs(number) < 1e15:
                    return int(number) if number.is_integer() else number
            except ValueError:
                pass
            try:
                return datetime.combine(date.fromisoformat(text), time())
            except ValueError:
                pass
        clean = ILLEGAL_CHARACTERS_RE.sub("", text.encode("utf-8", "replace").decode("utf-8"))
        return clean or None

    workbook = Workbook()
    sheet = workbook.active
    sheet.append([cell(h) if h.strip() else None for h in header])
    for cells in lines:
        sheet.append([cell(c) for c in cells])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def snapshot(engine: Engine) -> dict[str, object]:
    """Every row of the importer's tables, and the row count of every other table."""
    state: dict[str, object] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in IMPORT_TABLES:
                rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
                state[table.name] = [tuple(row) for row in rows]
            else:
                state[table.name] = conn.execute(
                    text(f"SELECT COUNT(*) FROM {table.name}")).scalar_one()
    return state


class CsvImportTrials:
    """Imports cases one after another into one database, and judges each.

    The importer's tables are read after every accepted import; a refused one must leave them
    exactly as they were. With ``settings`` (the embedded default, on the same database), every
    accepted import is followed by what the service does next with the accounts it touched:
    training, detection, and the charts of their entities; an exception there is a crash too.
    Those write models, runs and anomalies, so the snapshot is taken again after them.
    """

    def __init__(self, engine: Engine, path: Path, settings: Settings | None = None) -> None:
        self.engine = engine
        self.path = path
        self.settings = settings
        self.state = snapshot(engine)
        self.pipeline_runs = 0

    def check(self, case: CsvCase) -> Outcome:
        """Import ``case`` into the database that earlier cases filled."""
        path = self.path.with_suffix(".xlsx" if case.kind == "xlsx" else ".csv")
        path.write_bytes(case.data)
        try:
            summary = import_insights_csv(path, engine=self.engine, account_name=case.account,
                                          skip_invalid=case.skip_invalid, now=NOW)
        except InputFileError as error:
            unclear = _unclear_error(error, path, case)
            if unclear:
                return Outcome("crash", f"unclear error ({unclear}): {error}")
            if self._changed():
                return Outcome("crash", f"half-written: tables changed although refused: {error}")
            return Outcome("refused", str(error))
        except Exception as error:  # noqa: BLE001 - any other exception is the counted crash
            state = "tables changed" if self._changed() else "tables unchanged"
            return Outcome("crash", f"{type(error).__name__} ({state}): {str(error)[:300]}")
        self.state = snapshot(self.engine)
        wrong = _broken_rules(self.engine) or (None if case.skip_invalid else
                                               _rows_not_stored(self.engine, case, summary))
        if case.skip_invalid and not wrong and summary.problems:
            wrong = _unclear_error(InputFileError(summary.problems, hint="-"), path, case)
        if not wrong and self.settings is not None and summary.rows_imported:
            wrong = self._train_detect_chart(summary.accounts)
            self.state = snapshot(self.engine)
        if wrong:
            return Outcome("crash", f"accepted, but {wrong}")
        return Outcome("accepted")

    def _train_detect_chart(self, account_names: list[str]) -> str | None:
        """Train, detect and chart every entity of the imported accounts, as the service does."""
        from adsentinel.api.charts import metric_charts
        from adsentinel.api.queries import anomalies_of_entity
        from adsentinel.api.series import entity_series, series_range
        from adsentinel.db.engine import make_session_factory
        from adsentinel.db.models import AdAccount, Entity
        from adsentinel.detection.service import run_detection
        from adsentinel.training.service import train_account_models

        self.pipeline_runs += 1
        factory = make_session_factory(self.engine)
        with factory() as session:
            accounts = session.execute(select(AdAccount.id, AdAccount.currency).where(
                AdAccount.name.in_(account_names))).all()
        for account_id, currency in accounts:
            step = "training"
            try:
                train_account_models(session_factory=factory, settings=self.settings,
                                     account_id=account_id)
                step = "detection"
                run_detection(session_factory=factory, settings=self.settings,
                              account_id=account_id)
                step = "charts"
                with factory() as session:
                    for entity in session.scalars(select(Entity).where(
                            Entity.account_id == account_id)):
                        first, last = series_range(None, None, last_day=entity.last_day)
                        points = entity_series(session=session, settings=self.settings,
                                               entity_id=entity.id, first=first, last=last)
                        metric_charts(points, anomalies_of_entity(
                            session=session, entity_id=entity.id, start=first, end=last),
                            currency)
            except Exception as error:  # noqa: BLE001 - any exception is the counted crash
                return (f"then {step} of account {account_id} raised {type(error).__name__}: "
                        f"{str(error)[:300]}")
        return None

    def _changed(self) -> bool:
        now = snapshot(self.engine)
        changed, self.state = now != self.state, now
        return changed


def _line_count(case: CsvCase) -> int:
    if case.kind == "xlsx":  # every row of the sheet, empty ones included
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(case.data), read_only=True)
        try:
            return 1 + sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
    return case.data.count(b"\n") + case.data.count(b"\r") + 1


def _unclear_error(error: InputFileError, path: Path, case: CsvCase) -> str | None:
    """Why ``error`` does not say what is wrong, where, and what to do (``None``: it does)."""
    if not error.problems:
        return "no problem listed"
    if not error.hint:
        return "no hint saying what to do"
    lines = None
    for problem in error.problems:
        if problem.file != str(path) or not problem.message.strip():
            return f"problem without file or message: {problem!r}"
        if problem.line is not None:
            lines = lines or _safe_line_count(case)
            if not 1 <= problem.line <= lines:
                return f"line {problem.line} outside the file's {lines} lines"
        if problem.line is not None and problem.line > 1 and problem.column not in (None, *ALIASES):
            return f"unknown column {problem.column!r}"
    return None


def _safe_line_count(case: CsvCase) -> int:
    try:
        return _line_count(case)
    except Exception:  # noqa: BLE001 - a workbook openpyxl cannot read has one line at most
        return 1


def _is_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def _broken_rules(engine: Engine) -> str | None:
    """A stored row that breaks a documented rule: counts, spend, days, text sizes, control
    characters."""
    with engine.connect() as conn:
        days = conn.execute(text(
            "SELECT e.level, e.platform_id, d.day, d.spend, d.impressions, d.clicks, d.leads, "
            "d.reach, d.is_complete FROM daily_insights d JOIN entities e ON e.id = d.entity_id"
        )).all()
        entities = conn.execute(text("SELECT platform_id, name FROM entities")).all()
        accounts = conn.execute(text(
            "SELECT platform_account_id, name, currency FROM ad_accounts")).all()
    for level, pid, day, spend, impressions, clicks, leads, reach, complete in days:
        counts = (impressions, clicks, leads, reach)
        if not (math.isfinite(spend) and spend >= 0 and all(c >= 0 for c in counts)):
            return f"{level} {pid} on {day}: negative or infinite numbers {spend, *counts}"
        if clicks > impressions or reach > impressions:
            return f"{level} {pid} on {day}: clicks or reach above impressions {counts}"
        day = day if isinstance(day, date) else date.fromisoformat(day)
        if day > TODAY or day < date(1970, 1, 1) or bool(complete) != (day < TODAY):
            return f"{level} {pid} on {day}: outside 1970..today, or wrong partial flag {complete}"
    for pid, name in entities:
        if not 0 < len(pid) <= 64 or (name and len(name) > 400) or _is_control(pid + (name or "")):
            return f"entity id or name out of bounds: {pid!r} {name!r}"
    for pid, name, currency in accounts:
        if (pid and len(pid) > 64) or len(name) > 200 or _is_control(name + (pid or "")) or not (
                len(currency) == 3 and currency.isascii() and currency.isupper()):
            return f"account out of bounds: {pid!r} {name!r} {currency!r}"
    return None


def _file_rows(case: CsvCase) -> Iterator[list[object]]:
    """The case's rows (header first) as its writer meant them: CSV text cells split on the
    delimiter the case was written with, or the workbook's typed cells."""
    if case.kind == "xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(case.data), read_only=True, data_only=True)
        try:
            for values in workbook.worksheets[0].iter_rows(values_only=True):
                cells = ["" if v is None else v for v in values]
                while cells and cells[-1] == "":
                    cells.pop()
                if cells:
                    yield cells
        finally:
            workbook.close()
        return
    reader = csv.reader(io.StringIO(case.data.decode("utf-8-sig"), newline=""),
                        delimiter=case.delimiter)
    yield from reader


def _number_readings(cell: object) -> set[float]:
    """Every value a number cell can mean: as written, with thousands commas, or Brazilian."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return {float(cell)}
    text = str(cell).strip()
    if not text:
        return {0.0}
    readings = set()
    for candidate in (text, text.replace(",", ""), text.replace(".", "").replace(",", ".")):
        with suppress(ValueError):
            readings.add(float(candidate))
    return readings


def _day_readings(cell: object) -> set[date]:
    """Every day a date cell can mean: ISO, ``dd/mm/yyyy`` or ``mm/dd/yyyy``."""
    if isinstance(cell, datetime):
        return {cell.date()}
    text = str(cell).strip()
    readings = set()
    for form in ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y"):
        with suppress(ValueError):
            readings.add(datetime.strptime(text, form).date())
    return readings


def _rows_not_stored(engine: Engine, case: CsvCase, summary) -> str | None:
    """After an import without ``skip_invalid``: each line of the file is stored as it reads
    (one of its possible readings), in the account of its id (or, without ids, in the
    ``--account`` one); the lines without any id are the export's summary rows, skipped."""
    rows = _file_rows(case)
    headers = [normalise_header(str(h)) for h in next(rows)]
    headers = [re.sub(r"^(amount spent|valor usado|valor gasto|importe gastado) \([a-z]{3}\)$",
                      r"\1", h) for h in headers]
    at = {field: next(headers.index(a) for a in aliases if a in headers)
          for field, aliases in ALIASES.items() if any(a in headers for a in aliases)}
    summary_rows = 0
    with engine.connect() as conn:
        for number, cells in enumerate(rows, start=2):
            if not cells or all(str(c).strip() == "" for c in cells):
                continue
            cells = list(cells) + [""] * (len(headers) - len(cells))
            value = {field: cells[position] for field, position in at.items()}
            text_of = {field: str(v).strip() for field, v in value.items()}
            if not (text_of["campaign_id"] or text_of["adset_id"] or text_of["ad_id"]):
                summary_rows += 1
                continue
            account = ("a.platform_account_id = :account" if text_of.get("account_id")
                       else "a.name = :account")  # rows without an id: the --account one
            stored = conn.execute(text(
                "SELECT d.day, d.spend, d.impressions, d.clicks, d.leads, d.reach, p.platform_id "
                "FROM daily_insights d JOIN entities e ON e.id = d.entity_id "
                "JOIN entities p ON p.id = e.parent_id JOIN ad_accounts a ON a.id = e.account_id "
                f"WHERE {account} AND e.level = 'ad' AND e.platform_id = :ad"),
                {"account": text_of.get("account_id") or case.account,
                 "ad": text_of["ad_id"]}).all()
            days = _day_readings(value["date"])
            found = [s for s in stored
                     if (s.day if isinstance(s.day, date) else date.fromisoformat(s.day)) in days]
            numbers = ("spend", "impressions", "clicks", "leads", "reach")
            wanted = [_number_readings(value[f]) for f in numbers]
            if not any(all(got in readings for got, readings in zip(s[1:6], wanted, strict=True))
                       and s.platform_id == text_of["adset_id"] for s in found):
                return (f"line {number} stored as {found or stored[:3]}, the file says "
                        f"{[value[f] for f in ('date', *numbers, 'adset_id')]}")
    if summary_rows != len(summary.skipped):
        return f"{len(summary.skipped)} summary line(s) skipped, {summary_rows} lines have no ids"
    return None


# ---------------------------------------------------------------------------------------------
# Settings

SECRET_MARK = "hunter2"  # marks secret fields' values, which must never be shown
HOSTILE_ENV = (
    "", " ", "0", "-1", "1", "2", "59", "60", "65536", "1e400", "-1e400", "nan", "inf", "-inf",
    "9" * 5000, "1_000", "0x10", "²", "١٢", "true", "false", "yes", "maybe", "None", "null",
    "{}", "[]", '{"a": 1}', "\t", "💥", "a" * 300, "../../etc/passwd", "/", "America", "UTC",
    "Etc/GMT+99", "25:00", "04:00", "4:60", "24:00", "04:00:00.5", "sqlite://", "sqlite:///x.db",
    "mysql://u@h/db", "postgresql://u@h:abc/db", "redis://u@h:abc/0", "redis//u:pw@h",
    "\udcff", "caf\udce9", "${HOME}", "'quoted'", '"quoted"', "a=b", "DEBUG", "info", "ınfo",
)
SECRET_HOSTILE = (f"{SECRET_MARK}x", f"redis//u:{SECRET_MARK}x@h", f"redis://u:{SECRET_MARK}x@h:abc/0",
                  f"postgresql://u:{SECRET_MARK}x@h:abc/db", f"mysql://u:{SECRET_MARK}x@h/db")
env_text = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                       st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),  # bytes not
    max_size=24)                                                                  # in UTF-8


def _ints(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(str)


def _floats(low: float, high: float) -> st.SearchStrategy[str]:
    return st.floats(low, high, exclude_min=True, allow_nan=False).map(repr)


_BOOLS = st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE"])
_TIMES = st.builds(time, st.integers(0, 23), st.integers(0, 59)).map(lambda t: t.strftime("%H:%M"))
_SECRET = st.text(alphabet="abcdef0123456789", min_size=8, max_size=16).map(
    lambda s: f"{SECRET_MARK}-{s}")

#: valid values of every field (the documented constraints), as environment text
VALID_ENV: dict[str, st.SearchStrategy[str]] = {
    "data_dir": st.sampled_from(["data", "/tmp/adsentinel-fuzz", "rel/dir", "dönerdaten"]),
    "database_url": st.one_of(st.sampled_from(["sqlite:///x.db", "postgresql://app@db/ads",
                                               "postgresql+psycopg://u@h:5432/d"]),
                              _SECRET.map(lambda s: f"postgresql://app:{s}@db:5432/ads")),
    "models_storage_path": st.sampled_from(["models", "/srv/models"]),
    "models_storage_url": st.sampled_from(["postgresql://u@127.0.0.1/models",
                                           f"postgresql://u:{SECRET_MARK}@h/db",
                                           "s3://bucket/models?endpoint_url=http://127.0.0.1:9"]),
    "model_signing_key": _SECRET,
    "broker_url": st.one_of(st.just("redis://127.0.0.1:6379/1"),
                            _SECRET.map(lambda s: f"redis://:{s}@redis:6379/0")),
    "training_time": _TIMES,
    "timezone": st.sampled_from(["UTC", "America/Sao_Paulo", "Europe/Berlin", "Asia/Kolkata"]),
    "detection_minute": _ints(0, 59),
    "task_soft_time_limit": _ints(1, 3000),
    "task_time_limit": _ints(3001, 6000),
    "broker_visibility_timeout": _ints(6001, 100_000),
    "lock_retry_seconds": _ints(1, 10**6),
    "chunk_entities": _ints(1, 10**9),
    "training_batch_entities": _ints(1, 10**9),
    "worker_memory_mib": _ints(512, 10**6),
    "use_isolation_forest": _BOOLS,
    "isolation_forest_min_samples": _ints(2, 60),
    "isolation_forest_contamination": _floats(0.0, 0.5),
    "isolation_forest_history_days": _ints(60, 400),
    "anomaly_z_threshold": _floats(0.0, 1e6),
    "anomaly_iqr_multiplier": _floats(0.0, 1e6),
    "anomaly_min_history_days": _ints(3, 1000),
    "frequency_ideal": _floats(1.0, 1e6),
    "result_action_types": st.sampled_from(["lead", "lead,purchase", "offsite_conversion"]),
    "sync_window_days": _ints(1, 400),
    "sync_async_poll_timeout": _ints(1, 10**6),
    "sync_usage_slowdown_percent": _floats(0.0, 100.0),
    "public_url": st.sampled_from(["https://ads.example.com", "http://127.0.0.1:8000"]),
    "locale": st.sampled_from(["en", "pt_BR", "pt-BR", "en_US"]),
    "session_secret": _SECRET,
    "auth_failure_limit": _ints(0, 1_000_000),
    "auth_failure_window_seconds": _ints(1, 86_400),
    "chart_queue_limit": _ints(0, 10_000),
    "smtp_host": st.sampled_from(["smtp.example.com", "127.0.0.1"]),
    "smtp_port": _ints(1, 65535),
    "smtp_username": st.sampled_from(["alerts", "ops@example.com"]),
    "smtp_password": _SECRET,
    "smtp_starttls": _BOOLS,
    "smtp_from": st.sampled_from(["adsentinel@example.com"]),
    "alert_max_attempts": _ints(1, 100),
    "alert_digest_time": _TIMES,
    "log_level": st.sampled_from(["debug", "INFO", "Warning", "ERROR", "critical"]),
    "log_format": st.sampled_from(["text", "json"]),
    "meta_graph_url": st.sampled_from(["https://graph.facebook.com", "http://127.0.0.1:8999/x"]),
    "meta_api_version": st.sampled_from(["v26.0", "v25.0", "v9.1"]),
    "meta_app_secret_env": st.sampled_from(["META_APP_SECRET", "_X1"]),
    "model_signing_key_file": st.sampled_from(["/etc/adsentinel/signing-key", "keys/model.key"]),
    "sync_connect_timeout": _floats(0.001, 300.0),
    "sync_read_timeout": _floats(0.001, 3600.0),
    "sync_alert_after_failures": _ints(1, 100),
    "smtp_ssl": _BOOLS,
    "smtp_ca_file": st.sampled_from(["/etc/ssl/certs/ca.pem", "ca.pem"]),
    "smtp_allow_plaintext_login": _BOOLS,
    "worker_metrics_port": _ints(0, 65535),
}
SECRET_FIELDS = {name for name, info in Settings.model_fields.items()
                 if SecretStr in getattr(info.annotation, "__args__", (info.annotation,))}


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _env_value(field: str) -> st.SearchStrategy[str]:
    hostile = st.one_of(st.sampled_from(HOSTILE_ENV), env_text,
                        st.integers(-(2**80), 2**80).map(str), st.floats().map(repr))
    if field in SECRET_FIELDS:
        hostile = st.one_of(hostile, st.sampled_from(SECRET_HOSTILE))
    return st.one_of(VALID_ENV[field], VALID_ENV[field], hostile)


@st.composite
def settings_environments(draw, *, hostile_share: int = 3) -> dict[str, str]:
    """``ADSENTINEL_*`` variables: a few fields set, each valid or hostile (1 in
    ``hostile_share`` environments are all valid, to reach the cross-field checks)."""
    fields = draw(st.lists(st.sampled_from(sorted(VALID_ENV)), unique=True, min_size=1,
                           max_size=8))
    valid_only = draw(st.integers(0, hostile_share - 1)) == 0
    return {env_name(field): draw(VALID_ENV[field] if valid_only else _env_value(field))
            for field in fields}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in ``os.environ`` (every other ``ADSENTINEL_*`` removed) for the block."""
    outside = {k: v for k, v in os.environ.items()
               if k.startswith(ENV_PREFIX) and not k.startswith(f"{ENV_PREFIX}TEST_")}
    with mock.patch.dict(os.environ, values):
        for name in outside:
            os.environ.pop(name, None)
        yield


@st.composite
def dotenv_files(draw) -> bytes:
    """A ``.env`` file: ``ADSENTINEL_*`` lines (quoted or not), sometimes with stray bytes."""
    lines = []
    for name, value in draw(settings_environments()).items():
        quote = draw(st.sampled_from(["", "", "'", '"']))
        lines.append(f"{name}={quote}{value}{quote}".encode("utf-8", "surrogateescape"))
    data = b"\n".join(lines)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=12)) + data[at:]
    return data


def check_settings_environment(values: dict[str, str], dotenv: bytes | None = None) -> Outcome:
    """Load settings as the CLI does, with ``values`` in the environment and ``dotenv`` as the
    ``.env`` file of the working directory (which must be a scratch folder)."""
    assigned = dict(values)
    if dotenv is not None:
        Path(".env").write_bytes(dotenv)
        text_lines = dotenv.decode("utf-8", "surrogateescape").splitlines()
        assigned.update(line.split("=", 1) for line in text_lines
                        if line.startswith(ENV_PREFIX) and "=" in line)
    named, secrets = set(assigned), _secret_tokens(assigned)
    try:
        with environment(values):
            try:
                settings = load_settings()
            except ConfigError as error:
                unclear = unclear_config_error(error.message, named, secrets)
                return Outcome("crash", f"unclear error ({unclear}): {error!r}") if unclear else \
                    Outcome("refused", str(error))
            except Exception as error:  # noqa: BLE001 - any other exception is the counted crash
                return Outcome("crash", f"{type(error).__name__}: {str(error)[:300]}")
            try:
                broken = broken_settings(settings, secrets)
            except Exception as error:  # noqa: BLE001
                return Outcome("crash", f"loaded, then {type(error).__name__}: {str(error)[:300]}")
    finally:
        if dotenv is not None:
            Path(".env").unlink()
    return Outcome("crash", f"loaded, but {broken}") if broken else Outcome("accepted")


def _secret_tokens(assigned: dict[str, str]) -> set[str]:
    """The secret values' marked parts that no other variable holds as well."""
    secret = {name for name in assigned if name.removeprefix(ENV_PREFIX).lower() in SECRET_FIELDS}
    tokens = {token for name in secret  # in a URL only the password, before the "@", is secret
              for token in re.findall(rf"{SECRET_MARK}[\w-]*" + ("(?=@)" if name.endswith("_URL")
                                                                  else ""), assigned[name])}
    return {token for token in tokens
            if not any(token in value for name, value in assigned.items() if name not in secret)}


def unclear_config_error(message: str, named: set[str], secrets: set[str]) -> str | None:
    """Why a settings error message is not clear (``None``: it is): it must name one of the
    variables that were set (or "the .env file") and show no secret."""
    if any(token in message for token in secrets):
        return "shows a secret"
    if not {n for n in (env_name(f) for f in Settings.model_fields) if n in message} & named \
            and ".env file" not in message:
        return "names none of the variables that were set"
    return None


def broken_settings(settings: Settings, secrets: set[str]) -> str | None:
    """A loaded value outside its documented constraints; also runs what ``config show`` does."""
    bounds = {annotated_types.Ge: lambda v, m: v >= m.ge, annotated_types.Gt: lambda v, m: v > m.gt,
              annotated_types.Le: lambda v, m: v <= m.le, annotated_types.Lt: lambda v, m: v < m.lt}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        for rule in info.metadata:
            if value is not None and type(rule) in bounds and not bounds[type(rule)](value, rule):
                return f"{name} = {value!r} breaks {rule}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} = {value!r} is not finite"
        if isinstance(value, (str, Path)) and not _is_utf8(str(value)):
            return f"{name} = {value!r} is not UTF-8 text"
    ZoneInfo(settings.timezone)
    if settings.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        return f"log_level {settings.log_level!r}"
    if make_url(settings.effective_database_url).get_backend_name() not in {"sqlite",
                                                                             "postgresql"}:
        return f"database backend of {settings.effective_database_url!r}"
    if not (settings.task_soft_time_limit < settings.task_time_limit
            < settings.broker_visibility_timeout):
        return "time limits out of order"
    if settings.isolation_forest_history_days < settings.isolation_forest_min_samples:
        return "history shorter than min samples"
    if min(settings.chunk_size, settings.training_batch_size) < 1:
        return "an empty detection chunk or training batch"
    shown = json.dumps(settings.masked(), default=str)
    if any(token in shown for token in secrets):
        return f"config show reveals a secret: {shown}"
    return None


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
