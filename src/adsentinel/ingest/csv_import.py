"""Importing an insights file (CSV or XLSX) into the database: one transaction, streamed,
set-based.

How a file flows:

1. Lines are parsed and validated one by one (:mod:`adsentinel.ingest.csv_rows`, after a first
   pass that decides the file's local number and date formats) and streamed in batches into a
   temporary staging table, so memory stays bounded whatever the file size. The export's
   summary row is skipped and counted (``ImportSummary.skipped``).
2. Checks that span lines run in SQL on the staging table: the same ad and day twice with
   different numbers, an ad under two ad sets (or an ad set under two campaigns), a date in the
   account's future, a parent that contradicts what the database already holds.
3. Accounts, campaigns, ad sets and ads are upserted; the ads' daily rows are upserted (a day
   imported again is *restated*: its numbers are replaced and ``updated_at`` moves, so detection
   re-evaluates it); campaign and ad set rows are re-aggregated from all their ads for the days
   touched.

Any problem aborts the transaction, so nothing is half-written; ``skip_invalid=True`` instead drops
the offending lines, imports the rest, and reports what was dropped.

Campaign and ad set ``reach`` is the sum of their ads' reach, an upper bound: people reached by
two ads are counted twice. The Meta sync reads campaign-level reach directly instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from adsentinel.db.models import AdAccount
from adsentinel.errors import InputFileError, InputProblem
from adsentinel.ingest.csv_rows import (
    MAX_TEXT,
    InsightRow,
    SkippedLine,
    control_character_problem,
    iter_insight_rows,
)

log = logging.getLogger(__name__)

BATCH_ROWS = 5_000
MAX_REPORTED_PROBLEMS = 50
_STAGING_COLUMNS = (
    "line", "account_key", "account_name", "currency", "campaign_pid", "campaign_name",
    "adset_pid", "adset_name", "ad_pid", "ad_name", "day", "spend", "impressions", "clicks",
    "leads", "reach", "conversions", "revenue",
)
_METRICS = ("spend", "impressions", "clicks", "leads", "reach", "conversions", "revenue")
_NO_ACCOUNT = ""  # staging key of rows without an account id (single-account files)


@dataclass
class ImportSummary:
    """What an import did. ``problems`` lists the lines dropped under ``skip_invalid``."""

    file: str
    rows_read: int = 0
    rows_imported: int = 0
    duplicate_rows: int = 0
    invalid_rows: int = 0
    days_new: int = 0
    days_restated: int = 0
    days_unchanged: int = 0
    accounts: list[str] = field(default_factory=list)
    accounts_created: list[str] = field(default_factory=list)
    entities_created: dict[str, int] = field(default_factory=dict)
    first_day: date | None = None
    last_day: date | None = None
    problems: list[InputProblem] = field(default_factory=list)
    problems_total: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)


class _ProblemLog:
    """Keeps the first problems in full and counts the rest."""

    def __init__(self) -> None:
        self.shown: list[InputProblem] = []
        self.total = 0

    def add(self, problems: Iterable[InputProblem]) -> None:
        for problem in problems:
            self.total += 1
            if len(self.shown) < MAX_REPORTED_PROBLEMS:
                self.shown.append(problem)


def import_insights_csv(
    path: Path,
    *,
    engine: Engine,
    account_name: str | None = None,
    skip_invalid: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """Import ``path`` (canonical columns or a Meta Ads Manager export) in one transaction.

    ``account_name`` puts every row into that account (created if needed); it is required when
    the file has no ``account_id`` column. Raises :class:`InputFileError` listing every problem
    (file, line, column) and writes nothing, unless ``skip_invalid`` is set.
    """
    now = now or datetime.now(UTC)
    if account_name is not None:
        _check_account_option(str(path), account_name)
    summary = ImportSummary(file=str(path))
    problems = _ProblemLog()
    with engine.begin() as conn:
        dialect = _Dialect(conn)
        _create_staging(conn, dialect)  # dropped again at the end, or by the rollback
        _stream_into_staging(conn, dialect, path, account_name, problems, summary, on_bytes)
        _resolve_accounts(conn, dialect, path, account_name, now, summary)
        dialect.analyze(conn, "import_staging", "import_accounts")
        _check_across_lines(conn, dialect, str(path), problems, skip_invalid)
        if problems.total and not skip_invalid:
            raise _as_error(problems)  # rolls the whole transaction back
        _merge_staged(conn, dialect, summary, problems, now)
    for created in summary.accounts_created:  # only now: a failed import creates nothing
        log.info("created account %s", created)
    log.info("imported %s: %d rows, %d new days, %d restated, %d unchanged, %d summary line(s) "
             "skipped", path, summary.rows_imported, summary.days_new, summary.days_restated,
             summary.days_unchanged, len(summary.skipped))
    return summary


def upsert_ad_insight_rows(
    conn: Connection,
    rows: Iterable[InsightRow],
    *,
    account_id: int,
    source: str,
    now: datetime,
) -> ImportSummary:
    """Upsert ad-day rows of one existing account inside the caller's transaction.

    The same path as a CSV import (staging table, checks across rows, entity and ad-day upserts,
    re-aggregation of ad set and campaign days, restated-day counting), for rows that come from
    somewhere else, such as the Meta sync. Each row's ``line`` is its position in ``source``.
    Raises :class:`InputFileError` (nothing written once the caller rolls back) on rows that
    contradict each other or the database.
    """
    summary = ImportSummary(file=source)
    problems = _ProblemLog()
    account = conn.execute(select(AdAccount.platform_account_id, AdAccount.name,
                                  AdAccount.timezone).where(AdAccount.id == account_id)).one()
    key = account.platform_account_id or _NO_ACCOUNT
    dialect = _Dialect(conn)
    _create_staging(conn, dialect)

    def counted() -> Iterable[tuple]:
        for row in rows:
            summary.rows_read += 1
            staged = _staging_tuple(row, None)
            yield (staged[0], key, *staged[2:])

    _insert_staging(conn, dialect, counted())
    conn.exec_driver_sql(
        "CREATE INDEX import_staging_key ON import_staging (account_key, ad_pid, day)")
    conn.exec_driver_sql(
        f"INSERT INTO import_accounts (account_key, account_id, today) VALUES "
        f"({dialect.placeholder}, {dialect.placeholder}, {dialect.placeholder})",
        [(key, account_id, now.astimezone(ZoneInfo(account.timezone)).date())])
    summary.accounts.append(account.name)
    dialect.analyze(conn, "import_staging", "import_accounts")
    _check_across_lines(conn, dialect, source, problems, skip_invalid=False)
    if problems.total:
        raise InputFileError(_by_line(problems.shown), total=problems.total)
    _merge_staged(conn, dialect, summary, problems, now)
    return summary


def _check_account_option(file: str, name: str) -> None:
    """``--account`` must be a name the accounts table can hold."""
    limit = MAX_TEXT["account_name"]
    wrong: str | None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding on the command line
        wrong = "is not UTF-8 text"
    else:
        wrong = ("is empty" if not name.strip() else
                 f"is longer than {limit} characters ({len(name)})" if len(name) > limit else
                 control_character_problem(name))
    if wrong:
        raise InputFileError([InputProblem(file, None, "account_name", f"--account {wrong}")],
                             hint=f"name the account in at most {limit} characters of text")


def _merge_staged(conn: Connection, dialect, summary: ImportSummary, problems: _ProblemLog,
                  now: datetime) -> None:
    """The checked staging rows into the tables: entities, ad days, their parents' sums."""
    _count_days(conn, dialect, summary)
    _upsert_entities(conn, dialect, summary)
    _upsert_ad_days(conn, dialect, now)
    _aggregate_parents(conn, dialect, now)
    _fill_summary(conn, summary, problems)
    _drop_staging(conn, dialect)


def _as_error(problems: _ProblemLog) -> InputFileError:
    return InputFileError(_by_line(problems.shown), total=problems.total,
                          hint="fix these lines, or pass --skip-invalid to import the valid rows")


def _by_line(problems: list[InputProblem]) -> list[InputProblem]:
    return sorted(problems, key=lambda p: (p.line or 0))


class _Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL."""

    def __init__(self, conn: Connection) -> None:
        self.name = conn.dialect.name
        sqlite = self.name == "sqlite"
        self.least = "MIN" if sqlite else "LEAST"
        self.greatest = "MAX" if sqlite else "GREATEST"
        self.distinct = "IS NOT" if sqlite else "IS DISTINCT FROM"
        self.placeholder = "?" if sqlite else "%s"
        self.true = "1" if sqlite else "true"
        # SQLite has no statistics on the temporary tables; CROSS JOIN fixes the join order
        # (drive from the few affected days, then use the indexes of entities/daily_insights).
        self.cross = "CROSS" if sqlite else ""

    def analyze(self, conn: Connection, *tables: str) -> None:
        """Give PostgreSQL's planner statistics on freshly filled tables (autovacuum never
        analyses temporary tables, and without statistics it picks nested seq-scan loops)."""
        if self.name == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {', '.join(tables)}")


def _create_staging(conn: Connection, d: _Dialect) -> None:
    _drop_staging(conn, d)
    conn.exec_driver_sql("""
        CREATE TEMPORARY TABLE import_staging (
            line INTEGER NOT NULL, account_key VARCHAR(200) NOT NULL, account_name VARCHAR(200),
            currency VARCHAR(3), campaign_pid VARCHAR(64) NOT NULL, campaign_name VARCHAR(400),
            adset_pid VARCHAR(64) NOT NULL, adset_name VARCHAR(400), ad_pid VARCHAR(64) NOT NULL,
            ad_name VARCHAR(400), day DATE NOT NULL, spend FLOAT NOT NULL,
            impressions BIGINT NOT NULL, clicks BIGINT NOT NULL, leads BIGINT NOT NULL,
            reach BIGINT NOT NULL, conversions BIGINT, revenue FLOAT)""")
    conn.exec_driver_sql("""
        CREATE TEMPORARY TABLE import_accounts (
            account_key VARCHAR(200) PRIMARY KEY, account_id INTEGER NOT NULL, today DATE NOT NULL)""")
    conn.exec_driver_sql("""
        CREATE TEMPORARY TABLE import_affected (
            level VARCHAR(16) NOT NULL, entity_id INTEGER NOT NULL, day DATE NOT NULL)""")


def _drop_staging(conn: Connection, d: _Dialect) -> None:
    for table in ("import_staging", "import_accounts", "import_affected"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def _stream_into_staging(conn, d, path, account_name, problems, summary, on_bytes) -> None:
    """Parse ``path`` line by line into ``import_staging`` (COPY on PostgreSQL, batched
    executemany on SQLite); bad lines go to ``problems``."""

    def valid_rows() -> Iterable[tuple]:
        for item in iter_insight_rows(path, on_bytes=on_bytes):
            if isinstance(item, SkippedLine):
                summary.skipped.append(item)
                continue
            summary.rows_read += 1
            if isinstance(item, list):
                problems.add(item)
                summary.invalid_rows += 1
            else:
                yield _staging_tuple(item, account_name)

    _insert_staging(conn, d, valid_rows())
    if summary.rows_read == 0:
        problems.add([InputProblem(str(path), None, None, "the file has a header but no rows")])
    conn.exec_driver_sql(
        "CREATE INDEX import_staging_key ON import_staging (account_key, ad_pid, day)")


def _insert_staging(conn: Connection, d: _Dialect, rows: Iterable[tuple]) -> None:
    """Write staging tuples: COPY on PostgreSQL, batched executemany on SQLite."""
    columns = ", ".join(_STAGING_COLUMNS)
    if d.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None  # (None only once the connection is closed)
        cursor = driver.cursor()
        with cursor.copy(f"COPY import_staging ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    insert = (f"INSERT INTO import_staging ({columns}) VALUES "
              f"({', '.join([d.placeholder] * len(_STAGING_COLUMNS))})")
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            conn.exec_driver_sql(insert, batch)
            batch.clear()
    if batch:
        conn.exec_driver_sql(insert, batch)


def _staging_tuple(row: InsightRow, account_name: str | None) -> tuple:
    key = row.account_id or _NO_ACCOUNT
    return (row.line, key, account_name or row.account_name, row.currency, row.campaign_id,
            row.campaign_name, row.adset_id, row.adset_name, row.ad_id, row.ad_name, row.day,
            row.spend, row.impressions, row.clicks, row.leads, row.reach, row.conversions,
            row.revenue)


def _resolve_accounts(conn, d, path, account_name, now, summary) -> dict[str, int]:
    """Find or create the file's accounts; fill ``import_accounts`` (key -> id, local today)."""
    keys = conn.exec_driver_sql(
        "SELECT account_key, MAX(account_name), MAX(currency) FROM import_staging "
        "GROUP BY account_key ORDER BY account_key").all()
    if not keys:
        return {}
    file = str(path)
    if account_name is None and any(key == _NO_ACCOUNT for key, _, _ in keys):
        raise InputFileError(
            [InputProblem(file, None, "account_id", "rows have no account id")],
            hint="add an account_id column or pass --account NAME")
    if account_name is not None and len(keys) > 1:
        listed = ", ".join(key or "(none)" for key, _, _ in keys)
        raise InputFileError(
            [InputProblem(file, None, "account_id", f"the file holds {len(keys)} accounts "
                                                    f"({listed}); --account names only one")],
            hint="drop --account to import each account under its own id")
    session = Session(bind=conn)
    resolved: dict[str, int] = {}
    for key, name_in_file, currency in keys:
        platform_id = key or None
        account, created = _find_or_create_account(
            session, file, platform_id, account_name or name_in_file, currency)
        if created:
            summary.accounts_created.append(
                f"{account.name!r} ({platform_id or 'no platform id'})")
        resolved[key] = account.id
        summary.accounts.append(account.name)
    session.flush()
    rows = []
    for key, account_id in resolved.items():
        zone = ZoneInfo(session.get_one(AdAccount, account_id).timezone)
        rows.append((key, account_id, now.astimezone(zone).date()))
    conn.exec_driver_sql(
        f"INSERT INTO import_accounts (account_key, account_id, today) VALUES "
        f"({d.placeholder}, {d.placeholder}, {d.placeholder})", rows)
    return resolved


def _find_or_create_account(session, file: str, platform_id: str | None, name: str | None,
                            currency: str | None) -> tuple[AdAccount, bool]:
    """The file's account, found by id or name or created; and whether it was created."""
    by_id = (session.scalars(select(AdAccount).where(AdAccount.platform_account_id == platform_id))
             .one_or_none() if platform_id else None)
    by_name = (session.scalars(select(AdAccount).where(AdAccount.name == name)).one_or_none()
               if name else None)
    if by_id is not None and by_name is not None and by_id.id != by_name.id:
        raise InputFileError([InputProblem(
            file, None, "account_id",
            f"account id {platform_id} belongs to account {by_id.name!r}, not {name!r}")],
            hint=f"import with --account {by_id.name!r} or without --account")
    account = by_id or by_name
    if account is not None:
        if by_name is not None and platform_id and account.platform_account_id not in (
                None, platform_id):
            raise InputFileError([InputProblem(
                file, None, "account_id",
                f"account {name!r} has id {account.platform_account_id}, the file says "
                f"{platform_id}")], hint="check --account")
        if platform_id and account.platform_account_id is None:
            account.platform_account_id = platform_id
        if currency and account.currency != currency:
            log.warning("file says currency %s, account %r is in %s; keeping %s", currency,
                        account.name, account.currency, account.currency)
        return account, False
    if name is None and session.scalars(select(AdAccount.id).where(
            AdAccount.name == platform_id)).first() is not None:
        raise InputFileError([InputProblem(  # a new account is named after its id: taken
            file, None, "account_id",
            f"account id {platform_id} is new, but another account is named {platform_id!r}")],
            hint="add an account_name column naming the new account")
    account = AdAccount(name=name or platform_id, platform_account_id=platform_id,
                        currency=currency or "USD", timezone="UTC", is_active=True)
    session.add(account)
    session.flush()
    return account, True


def _check_across_lines(conn, d, file: str, problems: _ProblemLog, skip_invalid: bool) -> None:
    """Problems only visible across lines or against the database, found in SQL.

    Each check is (query of offending keys with two line numbers, how to describe one, the key
    columns); under ``skip_invalid`` every staged line of an offending key is dropped.
    """
    differs = " OR ".join([f"MIN({m}) <> MAX({m})" for m in _METRICS[:5]]
                          + [f"COUNT(DISTINCT {m}) > 1" for m in _METRICS[5:]])
    # (query, its key columns, the problem of one row found: (line, column, message))
    checks: list[tuple[str, tuple[str, ...], Callable[..., tuple[int, str, str]]]] = [
        (f"""SELECT account_key, ad_pid, day, MIN(line), MAX(line) FROM import_staging
             GROUP BY account_key, ad_pid, day HAVING COUNT(*) > 1 AND ({differs})""",
         ("account_key", "ad_pid", "day"),
         lambda key, first, last: (last, "ad_id", f"duplicate row for ad {key[1]} on {key[2]} "
                                                  f"with different values (first on line {first})")),
        ("""SELECT account_key, ad_pid, MIN(line), MAX(line) FROM import_staging
            GROUP BY account_key, ad_pid HAVING MIN(adset_pid) <> MAX(adset_pid)""",
         ("account_key", "ad_pid"),
         lambda key, first, last: (last, "adset_id", f"ad {key[1]} appears under two ad sets "
                                                     f"(lines {first} and {last})")),
        ("""SELECT account_key, adset_pid, MIN(line), MAX(line) FROM import_staging
            GROUP BY account_key, adset_pid HAVING MIN(campaign_pid) <> MAX(campaign_pid)""",
         ("account_key", "adset_pid"),
         lambda key, first, last: (last, "campaign_id", f"ad set {key[1]} appears under two "
                                                        f"campaigns (lines {first} and {last})")),
        ("""SELECT s.account_key AS account_key, s.line AS line, s.day
            FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
            WHERE s.day > a.today""",
         ("account_key", "line"),
         lambda key, day: (key[1], "date", f"{day} is in the future for this account")),
        ("""SELECT s.account_key AS account_key, s.ad_pid AS ad_pid, MIN(s.line),
                   MIN(p.platform_id)
            FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
            JOIN entities e ON e.account_id = a.account_id AND e.level = 'ad'
                           AND e.platform_id = s.ad_pid
            JOIN entities p ON p.id = e.parent_id
            WHERE p.platform_id <> s.adset_pid GROUP BY s.account_key, s.ad_pid""",
         ("account_key", "ad_pid"),
         lambda key, line, known: (line, "adset_id", f"ad {key[1]} is already stored under ad "
                                                     f"set {known}, not the one on this line")),
    ]
    for query, key_columns, describe in checks:
        found = conn.exec_driver_sql(f"{query} LIMIT {MAX_REPORTED_PROBLEMS + 1}").all()
        for row in found:
            key, rest = row[: len(key_columns)], row[len(key_columns):]
            line, column, message = describe(key, *rest)
            problems.add([InputProblem(file, line, column, message)])
        if found and skip_invalid:
            same_key = " AND ".join(f"bad.{c} = import_staging.{c}" for c in key_columns)
            conn.exec_driver_sql(f"DELETE FROM import_staging WHERE EXISTS "
                                 f"(SELECT 1 FROM ({query}) bad WHERE {same_key})")


def _count_days(conn, d, summary: ImportSummary) -> None:
    changed = " OR ".join(f"di.{m} {d.distinct} x.{m}" for m in _METRICS)
    total, existing, restated = conn.exec_driver_sql(f"""
        SELECT COUNT(*), COUNT(di.id), SUM(CASE WHEN di.id IS NOT NULL AND ({changed}) THEN 1
                                                ELSE 0 END)
        FROM (SELECT a.account_id, s.ad_pid, s.day, {', '.join(f'MAX(s.{m}) AS {m}' for m in _METRICS)}
              FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
              GROUP BY a.account_id, s.ad_pid, s.day) x
        LEFT JOIN entities e ON e.account_id = x.account_id AND e.level = 'ad'
                            AND e.platform_id = x.ad_pid
        LEFT JOIN daily_insights di ON di.entity_id = e.id AND di.day = x.day""").one()
    summary.days_new = total - existing
    summary.days_restated = restated or 0
    summary.days_unchanged = existing - (restated or 0)


def _upsert_entities(conn, d, summary: ImportSummary) -> None:
    before = dict(conn.exec_driver_sql(
        "SELECT level, COUNT(*) FROM entities WHERE account_id IN "
        "(SELECT account_id FROM import_accounts) GROUP BY level").all())
    on_conflict = f"""
        ON CONFLICT (account_id, level, platform_id) DO UPDATE SET
            name = COALESCE(excluded.name, entities.name),
            first_day = {d.least}(COALESCE(entities.first_day, excluded.first_day), excluded.first_day),
            last_day = {d.greatest}(COALESCE(entities.last_day, excluded.last_day), excluded.last_day)"""
    conn.exec_driver_sql(f"""
        INSERT INTO entities (account_id, level, platform_id, parent_id, name, status, first_day,
                              last_day)
        SELECT a.account_id, 'campaign', s.campaign_pid, NULL, MAX(s.campaign_name), 'ACTIVE',
               MIN(s.day), MAX(s.day)
        FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
        WHERE {d.true} = {d.true} GROUP BY a.account_id, s.campaign_pid {on_conflict}""")
    for level, parent_level, own, parent in (("adset", "campaign", "adset", "campaign"),
                                             ("ad", "adset", "ad", "adset")):
        d.analyze(conn, "entities")
        conn.exec_driver_sql(f"""
            INSERT INTO entities (account_id, level, platform_id, parent_id, name, status,
                                  first_day, last_day)
            SELECT a.account_id, '{level}', s.{own}_pid, p.id, MAX(s.{own}_name), 'ACTIVE',
                   MIN(s.day), MAX(s.day)
            FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
            JOIN entities p ON p.account_id = a.account_id AND p.level = '{parent_level}'
                           AND p.platform_id = s.{parent}_pid
            WHERE {d.true} = {d.true} GROUP BY a.account_id, s.{own}_pid, p.id {on_conflict}""")
    after = dict(conn.exec_driver_sql(
        "SELECT level, COUNT(*) FROM entities WHERE account_id IN "
        "(SELECT account_id FROM import_accounts) GROUP BY level").all())
    summary.entities_created = {level: after.get(level, 0) - before.get(level, 0)
                                for level in ("campaign", "adset", "ad")}


def _upsert_insights_sql(d: _Dialect, select_sql: str) -> str:
    columns = ("entity_id", "day", *_METRICS, "is_complete", "as_of", "updated_at")
    # A partial day is also rewritten when only its as_of moved: "no change since the last
    # pull" is itself news (delivery stopped), and intraday detection reads how far the day got.
    changed = " OR ".join([f"daily_insights.{m} {d.distinct} excluded.{m}"
                           for m in (*_METRICS, "is_complete")]
                          + [f"(NOT excluded.is_complete AND daily_insights.as_of {d.distinct} "
                             "excluded.as_of)"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*_METRICS, "is_complete", "as_of",
                                                         "updated_at"))
    return (f"INSERT INTO daily_insights ({', '.join(columns)}) {select_sql} "
            f"ON CONFLICT (entity_id, day) DO UPDATE SET {updates} WHERE {changed}")


def _upsert_ad_days(conn, d, now: datetime) -> None:
    """Ads' daily rows; days from the account's today on are partial (``is_complete`` false)."""
    values = ", ".join(f"MAX(s.{m})" for m in _METRICS)
    select_sql = f"""
        SELECT e.id, s.day, {values},
               CASE WHEN s.day < MAX(a.today) THEN {d.true} ELSE NOT {d.true} END,
               CASE WHEN s.day < MAX(a.today) THEN NULL ELSE :now END, :now
        FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
        JOIN entities e ON e.account_id = a.account_id AND e.level = 'ad'
                       AND e.platform_id = s.ad_pid
        WHERE {d.true} = {d.true} GROUP BY e.id, s.day"""
    d.analyze(conn, "entities")
    conn.execute(text(_upsert_insights_sql(d, select_sql)), {"now": now})
    conn.exec_driver_sql("""
        INSERT INTO import_affected (level, entity_id, day)
        SELECT DISTINCT 'adset', e.parent_id, s.day
        FROM import_staging s JOIN import_accounts a ON a.account_key = s.account_key
        JOIN entities e ON e.account_id = a.account_id AND e.level = 'ad'
                       AND e.platform_id = s.ad_pid""")
    conn.exec_driver_sql("CREATE INDEX import_affected_key ON import_affected (level, entity_id, day)")
    conn.exec_driver_sql("""
        INSERT INTO import_affected (level, entity_id, day)
        SELECT DISTINCT 'campaign', e.parent_id, f.day
        FROM import_affected f JOIN entities e ON e.id = f.entity_id WHERE f.level = 'adset'""")


def _aggregate_parents(conn, d, now: datetime) -> None:
    """Re-sum ad set days from all their ads, then campaign days from their ad sets."""
    d.analyze(conn, "import_affected", "daily_insights")
    sums = ", ".join(f"SUM(c.{m})" for m in _METRICS)
    for level in ("adset", "campaign"):
        select_sql = f"""
            SELECT child.parent_id, c.day, {sums},
                   MIN(CASE WHEN c.is_complete THEN 1 ELSE 0 END) = 1, MAX(c.as_of), :now
            FROM import_affected f
            {d.cross} JOIN entities child ON child.parent_id = f.entity_id
            {d.cross} JOIN daily_insights c ON c.entity_id = child.id AND c.day = f.day
            WHERE f.level = '{level}' GROUP BY child.parent_id, c.day"""
        conn.execute(text(_upsert_insights_sql(d, select_sql)), {"now": now})


def _fill_summary(conn, summary: ImportSummary, problems: _ProblemLog) -> None:
    count, duplicates, first, last = conn.exec_driver_sql("""
        SELECT COUNT(*), COUNT(*) - COUNT(DISTINCT account_key || '|' || ad_pid || '|' || day),
               MIN(day), MAX(day) FROM import_staging""").one()
    summary.rows_imported = count - duplicates
    summary.duplicate_rows = duplicates
    summary.first_day = _as_date(first)
    summary.last_day = _as_date(last)
    summary.problems = _by_line(problems.shown)
    summary.problems_total = problems.total
    if problems.total:
        summary.invalid_rows = summary.rows_read - count


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
