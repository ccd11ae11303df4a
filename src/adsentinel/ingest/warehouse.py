"""Daily insights from a data warehouse, where Fivetran or Airbyte already land Meta Ads.

``adsentinel import --from-sql URL --source fivetran|airbyte|query`` reads, through SQLAlchemy
(any database with a dialect and driver installed: PostgreSQL here, BigQuery and Snowflake
through ``sqlalchemy-bigquery`` / ``snowflake-sqlalchemy``):

* ``fivetran``: the Facebook Ads connector's ``basic_ad`` report (ad, day, impressions,
  ``inline_link_clicks``, spend, reach), its ``basic_ad_actions`` (leads: the result action types),
  and the latest version of each ad, ad set and campaign in ``ad_history``, ``ad_set_history``
  and ``campaign_history`` (their parents and names);
* ``airbyte``: the Facebook Marketing source's ``ads_insights`` stream (``date_start``, the ids
  and names, ``inline_link_clicks``, ``actions`` as JSON);
* ``query``: any ``SELECT`` returning the import's canonical columns (``date, account_id,
  campaign_id, adset_id, ad_id, spend, impressions, clicks, leads, reach``, names optional).

Rows are streamed (``stream_results``, :data:`FETCH_ROWS` at a time), checked one by one as a CSV
line is (numbers, clicks and reach within impressions, no future day, printable text of the
allowed length), then written per account through the CSV importer's own upsert
(:func:`~adsentinel.ingest.csv_import.upsert_ad_insight_rows`: checks across rows, restated
days, parents' sums), all in one transaction: a bad row means nothing is written.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from adsentinel.db.external import external_engine
from adsentinel.db.models import AdAccount
from adsentinel.errors import ConfigError, InputFileError, InputProblem, StorageError
from adsentinel.ingest.csv_import import upsert_ad_insight_rows
from adsentinel.ingest.csv_rows import MAX_ID, MAX_TEXT, InsightRow, control_character_problem

log = logging.getLogger(__name__)

SOURCES = ("fivetran", "airbyte", "query")
FETCH_ROWS = 5_000
MAX_REPORTED_PROBLEMS = 50
_COUNTS = ("impressions", "clicks", "leads", "reach")


@dataclass
class WarehouseImport:
    """What an import from a warehouse did."""

    source: str
    rows_read: int = 0
    days_new: int = 0
    days_restated: int = 0
    accounts: list[str] = field(default_factory=list)


# --- the queries of each source ---------------------------------------------------------------


def _table(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def fivetran_query(schema: str | None, action_types: list[str]) -> tuple[str, dict[str, str]]:
    """Fivetran's Facebook Ads tables as canonical rows, ordered by account, and its parameters.

    History tables keep one row per change: the latest ``updated_time`` of each id wins. Leads
    are the ``value`` of the result action types in ``basic_ad_actions``, summed per ad and day
    by the warehouse."""
    latest = ("SELECT * FROM (SELECT h.*, ROW_NUMBER() OVER (PARTITION BY id ORDER BY "
              "updated_time DESC) AS version FROM {table} h) v WHERE version = 1")
    names = {f"type{i}": t for i, t in enumerate(action_types)}
    listed = ", ".join(f":{n}" for n in names)
    sql = f"""
        SELECT b.date AS date, CAST(b.account_id AS VARCHAR(64)) AS account_id,
               CAST(a.campaign_id AS VARCHAR(64)) AS campaign_id,
               CAST(a.ad_set_id AS VARCHAR(64)) AS adset_id,
               CAST(b.ad_id AS VARCHAR(64)) AS ad_id,
               c.name AS campaign_name, s.name AS adset_name, a.name AS ad_name,
               b.spend AS spend, b.impressions AS impressions,
               b.inline_link_clicks AS clicks, b.reach AS reach,
               COALESCE(l.leads, 0) AS leads
        FROM {_table(schema, 'basic_ad')} b
        LEFT JOIN ({latest.format(table=_table(schema, 'ad_history'))}) a
               ON CAST(a.id AS VARCHAR(64)) = CAST(b.ad_id AS VARCHAR(64))
        LEFT JOIN ({latest.format(table=_table(schema, 'ad_set_history'))}) s ON s.id = a.ad_set_id
        LEFT JOIN ({latest.format(table=_table(schema, 'campaign_history'))}) c
               ON c.id = a.campaign_id
        LEFT JOIN (SELECT CAST(ad_id AS VARCHAR(64)) AS ad_id, date, SUM(value) AS leads
                   FROM {_table(schema, 'basic_ad_actions')}
                   WHERE action_type IN ({listed}) GROUP BY 1, 2) l
               ON l.ad_id = CAST(b.ad_id AS VARCHAR(64)) AND l.date = b.date
        ORDER BY 2, 5, 1"""
    return sql, names


def airbyte_query(schema: str | None) -> str:
    """Airbyte's ``ads_insights`` stream as canonical rows (leads from ``actions``)."""
    return f"""
        SELECT date_start AS date, CAST(account_id AS VARCHAR(64)) AS account_id,
               account_name, account_currency AS currency,
               CAST(campaign_id AS VARCHAR(64)) AS campaign_id, campaign_name,
               CAST(adset_id AS VARCHAR(64)) AS adset_id, adset_name,
               CAST(ad_id AS VARCHAR(64)) AS ad_id, ad_name,
               spend, impressions, inline_link_clicks AS clicks, reach, actions
        FROM {_table(schema, 'ads_insights')}
        ORDER BY 2, ad_id, date_start"""


# --- reading ----------------------------------------------------------------------------------


def source_rows(engine: Engine, *, source: str, query: str | None = None,
                schema: str | None = None, action_types: list[str]) -> Iterator[dict[str, Any]]:
    """Canonical rows (dicts) from the warehouse, streamed and ordered by account for
    ``fivetran`` and ``airbyte`` (a ``query`` should end with ``ORDER BY account_id``; unordered,
    its accounts are written in several passes, which is slower but also correct)."""
    if source not in SOURCES:
        raise ConfigError(f"--source must be fivetran, airbyte or query, got {source!r}")
    if source == "query":
        if not (query and query.strip()):
            raise ConfigError("--source query needs --query 'SELECT ...'")
        return _stream(engine, query, {})
    if query:
        raise ConfigError("--query is only for --source query")
    if source == "fivetran":
        return _stream(engine, *fivetran_query(schema, action_types))
    return (_with_leads_from_actions(row, action_types)
            for row in _stream(engine, airbyte_query(schema), {}))


def _with_leads_from_actions(row: dict[str, Any], action_types: list[str]) -> dict[str, Any]:
    """An Airbyte row with ``leads`` summed from its ``actions`` (and without them)."""
    row["leads"] = _actions_total(row.pop("actions", None), action_types)
    return row


def _stream(engine: Engine, sql: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    try:
        with engine.connect().execution_options(stream_results=True) as conn:
            result = conn.execute(text(sql), dict(params))
            while batch := result.mappings().fetchmany(FETCH_ROWS):
                for row in batch:
                    yield dict(row)
    except SQLAlchemyError as exc:
        raise StorageError(f"the warehouse query failed: {_first_line(exc)}",
                           hint="check --source, --schema and that the tables exist") from None


def _actions_total(actions: Any, action_types: list[str]) -> float:
    """The sum of the ``value`` of ``actions`` (Meta's list of ``{action_type, value}``, as JSON
    text or already decoded) whose type is a result type."""
    if actions in (None, ""):
        return 0
    if isinstance(actions, (str, bytes)):
        actions = json.loads(actions)
    total = 0.0
    for action in actions or ():
        if isinstance(action, Mapping) and action.get("action_type") in action_types:
            total += float(action.get("value") or 0)
    return total


# --- checking, one row at a time ---------------------------------------------------------------


def checked_rows(rows: Iterable[dict[str, Any]], source: str, today: date,
                 problems: list[InputProblem]) -> Iterator[InsightRow]:
    """Each warehouse row as an :class:`InsightRow`, or its problems appended to ``problems``
    (as a CSV line's would be: ``source:row column 'x': problem``)."""
    for number, row in enumerate(rows, start=1):
        found: list[InputProblem] = []

        def report(column: str, message: str) -> None:  # called for this row only, within its iteration
            found.append(InputProblem(source, number, column, message))  # noqa: B023

        converted = _insight_row(row, number, today, report)
        if found:
            problems.extend(found)
        elif converted is not None:  # (None only with a problem reported)
            yield converted


def _insight_row(row: Mapping[str, Any], number: int, today: date, report) -> InsightRow | None:
    missing = [c for c in ("date", "account_id", "campaign_id", "adset_id", "ad_id", "spend",
                           "impressions", "clicks", "leads", "reach") if c not in row]
    if missing:
        report(missing[0], f"the query returns no column(s) {', '.join(missing)}")
        return None
    day = _day(row["date"])
    if day is None:
        report("date", f"{row['date']!r} is not a date")
    elif day > today:
        report("date", f"{day} is in the future")
    ids = {name: _text(row.get(name), name, MAX_ID, report, required=True)
           for name in ("account_id", "campaign_id", "adset_id", "ad_id")}
    names = {name: _text(row.get(name), name, MAX_TEXT[name], report, required=False)
             for name in ("account_name", "campaign_name", "adset_name", "ad_name")}
    spend = _number(row["spend"], "spend", report)
    counts = {name: _count(row[name], name, report) for name in _COUNTS}
    impressions = counts["impressions"]
    clicks, leads, reach = counts["clicks"], counts["leads"], counts["reach"]
    for name, count in (("clicks", clicks), ("reach", reach)):
        if impressions is not None and count is not None and count > impressions:
            report(name, f"{count} is more than the {impressions} impressions")
    currency = row.get("currency")
    account_pid, campaign_id, adset_id, ad_id = (
        ids["account_id"], ids["campaign_id"], ids["adset_id"], ids["ad_id"])
    if (day is None or spend is None or impressions is None or clicks is None or leads is None
            or reach is None or account_pid is None or campaign_id is None or adset_id is None
            or ad_id is None):
        return None
    return InsightRow(line=number, day=day, account_id=platform_account_id(account_pid),
                      account_name=names["account_name"],
                      currency=str(currency)[:3].upper() if currency else None,
                      campaign_id=campaign_id, campaign_name=names["campaign_name"],
                      adset_id=adset_id, adset_name=names["adset_name"], ad_id=ad_id,
                      ad_name=names["ad_name"], spend=spend, impressions=impressions,
                      clicks=clicks, leads=leads, reach=reach, conversions=None, revenue=None)


def platform_account_id(value: str) -> str:
    """Meta's ``act_<digits>`` form (Fivetran and Airbyte store the bare number)."""
    return f"act_{value}" if value.isdigit() else value


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def _text(value: Any, column: str, limit: int, report, *, required: bool) -> str | None:
    if value is None or str(value).strip() == "":
        if required:
            report(column, "is empty")
        return None
    shown = str(int(value)) if isinstance(value, (Decimal, float)) and value == int(value) \
        else str(value).strip()
    problem = control_character_problem(shown)
    if problem:
        report(column, problem)
    elif len(shown) > limit:
        report(column, f"is {len(shown)} characters long; at most {limit}")
    return shown


def _number(value: Any, column: str, report) -> float | None:
    if value is None:
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        report(column, f"{value!r} is not a number")
        return None
    if not math.isfinite(number) or number < 0:
        report(column, f"{value!r} is not a non-negative number")
        return None
    return number


def _count(value: Any, column: str, report) -> int | None:
    number = _number(value, column, report)
    if number is None:
        return None
    if number != int(number):
        report(column, f"{value!r} is not a whole number")
        return None
    return int(number)


# --- writing ----------------------------------------------------------------------------------


def import_from_warehouse(*, engine: Engine, url: str, source: str, query: str | None = None,
                          schema: str | None = None, action_types: list[str],
                          now: datetime | None = None) -> WarehouseImport:
    """Read the warehouse at ``url`` and upsert its rows into adsentinel's database ``engine``,
    in one transaction. Raises :class:`InputFileError` listing the bad rows (nothing written),
    :class:`ConfigError` for a bad URL or source, :class:`StorageError` when a query fails."""
    now = now or datetime.now(UTC)
    summary = WarehouseImport(source=f"{source} at {_hidden(url)}")
    warehouse = warehouse_engine(url)
    problems: list[InputProblem] = []
    try:
        rows = source_rows(warehouse, source=source, query=query, schema=schema,
                           action_types=action_types)
        today = (now + timedelta(hours=14)).date()  # the easternmost timezone's today
        checked = checked_rows(rows, source, today, problems)
        with engine.begin() as conn:
            for account_pid, account_rows in itertools.groupby(checked,
                                                               key=lambda r: r.account_id):
                peekable = _Peekable(account_rows)
                first = peekable.first
                account_id, name = _account_for(conn, account_pid, first.account_name,
                                                first.currency)
                done = upsert_ad_insight_rows(conn, peekable, account_id=account_id,
                                              source=source, now=now)
                summary.rows_read += done.rows_read
                summary.days_new += done.days_new
                summary.days_restated += done.days_restated
                if name not in summary.accounts:
                    summary.accounts.append(name)
                if problems:
                    break  # stop reading; the error below rolls everything back
            if problems:
                _drain(checked)
                raise InputFileError(problems[:MAX_REPORTED_PROBLEMS], total=len(problems),
                                     hint="fix these rows in the warehouse (or the --query); "
                                          "nothing was imported")
    finally:
        warehouse.dispose()
    log.info("imported %d rows from %s: %d new days, %d restated", summary.rows_read,
             summary.source, summary.days_new, summary.days_restated)
    return summary


def _drain(rows: Iterator[InsightRow], limit: int = 100_000) -> None:
    """Read on a little so that the error lists more than the first bad row."""
    for _ in itertools.islice(rows, limit):
        pass


class _Peekable:
    """An iterator whose first item can be looked at before it is consumed."""

    def __init__(self, items: Iterator[InsightRow]) -> None:
        self._items = iter(items)
        self.first = next(self._items)

    def __iter__(self) -> Iterator[InsightRow]:
        yield self.first
        yield from self._items


def _account_for(conn, platform_id: str, name: str | None, currency: str | None) -> tuple[int, str]:
    """The account with this Meta id, created (named ``name``, else the id) when new."""
    with Session(bind=conn) as session:
        account = session.scalars(select(AdAccount).where(
            AdAccount.platform_account_id == platform_id)).one_or_none()
        if account is None:
            wanted = name or platform_id
            if session.scalars(select(AdAccount.id).where(AdAccount.name == wanted)).first():
                raise InputFileError([InputProblem(
                    "warehouse", None, "account_id",
                    f"account id {platform_id} is new, but an account is already named "
                    f"{wanted!r}")], hint="rename that account or give this one another name")
            account = AdAccount(name=wanted, platform_account_id=platform_id,
                                currency=currency or "USD", timezone="UTC", is_active=True)
            session.add(account)
            session.flush()
            log.info("created account %r (%s)", account.name, platform_id)
        return account.id, account.name


def warehouse_engine(url: str) -> Engine:
    """An engine on the warehouse (``postgresql://`` uses the installed psycopg 3)."""
    return external_engine(url, option="--from-sql",
                           example="postgresql://user@host:5432/warehouse",
                           dialect_hint="install the warehouse's dialect: sqlalchemy-bigquery, "
                                        "snowflake-sqlalchemy, ...")


def _hidden(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the warehouse"


def _first_line(exc: SQLAlchemyError) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["error"])[0]
