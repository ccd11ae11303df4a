"""The API's anomaly list as a file: ``GET /api/v1/anomalies?format=csv|xlsx``.

Every anomaly matching the list's filters, in the list's order, read in chunks of
:data:`CHUNK` rows. CSV is streamed (any size); XLSX is built in openpyxl's write-only mode and
refused beyond :data:`XLSX_MAX_ROWS` rows (narrow the filters, or ask for CSV).

Spreadsheet formula injection (OWASP "CSV injection"): a text cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading apostrophe, so a spreadsheet shows it as
text instead of running it (an ad's name is whatever its advertiser typed). Numbers and dates
stay numbers and dates.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.api import queries
from adsentinel.db.models import Anomaly
from adsentinel.errors import AdsentinelError
from adsentinel.service.anomaly_record import LEVELS, anomaly_places

CHUNK = 1_000
#: rows at most in one XLSX file (Excel's limit is 1,048,576; the file is built in memory)
XLSX_MAX_ROWS = 100_000
COLUMNS = ("id", "day", "account", "account_meta_id", "level", "campaign", "campaign_meta_id",
           "adset", "adset_meta_id", "ad", "ad_meta_id", "metric", "direction", "severity",
           "score", "actual", "expected", "impact_amount", "currency", "started",
           "duration_days", "kind", "next_step", "status", "message")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def inert(value: Any) -> Any:
    """``value`` safe for a spreadsheet cell: text that would start a formula is quoted with
    an apostrophe; other values unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_row(fields: dict[str, Any]) -> list[Any]:
    """An anomaly's API fields (:func:`~adsentinel.api.queries.anomaly_dict` with its place)
    as the cells of :data:`COLUMNS`, made inert."""
    ids = fields["meta_ids"] or {}
    names = fields["names"] or {}
    cells = {**fields, "account": names.get("account"), "account_meta_id": ids.get("account"),
             **{level: names.get(level) for level in LEVELS},
             **{f"{level}_meta_id": ids.get(level) for level in LEVELS}}
    return [inert(cells.get(column)) for column in COLUMNS]


def exported_rows(session: Session, query: Select) -> Iterator[list[Any]]:
    """The cells of every anomaly of ``query``, chunk by chunk (bounded memory)."""
    offset = 0
    while True:
        chunk: list[Anomaly] = list(session.scalars(query.offset(offset).limit(CHUNK)))
        if not chunk:
            return
        places = anomaly_places(session, chunk)
        for anomaly in chunk:
            yield export_row(queries.anomaly_dict(anomaly, places.get(anomaly.id)))
        session.expunge_all()  # the chunk's objects are not needed again
        offset += CHUNK


def csv_stream(session_factory: sessionmaker[Session], query: Select) -> Iterator[bytes]:
    """UTF-8 CSV (a BOM first, so that Excel reads accents), header then rows, in pieces; the
    session is opened and closed here, since the response outlives the request's session."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield ("\ufeff" + _drain(buffer)).encode("utf-8")
    with session_factory() as session:
        for count, row in enumerate(exported_rows(session, query), start=1):
            writer.writerow([_csv_text(v) for v in row])
            if count % CHUNK == 0:
                yield _drain(buffer).encode("utf-8")
    yield _drain(buffer).encode("utf-8")


def xlsx_bytes(session: Session, query: Select, total: int) -> bytes:
    """An XLSX workbook (one sheet, header row frozen) of ``query``'s anomalies;
    :class:`AdsentinelError` beyond :data:`XLSX_MAX_ROWS`."""
    if total > XLSX_MAX_ROWS:
        raise AdsentinelError(
            f"{total:,} anomalies match: an XLSX export holds at most {XLSX_MAX_ROWS:,}",
            hint="narrow the filters (account, start, end, severity ...) or ask for format=csv")
    from openpyxl import Workbook  # only for this export

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("anomalies")
    sheet.freeze_panes = "A2"
    sheet.append(list(COLUMNS))
    for row in exported_rows(session, query):
        sheet.append([_xlsx_value(v) for v in row])
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        return handle.read()


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _csv_text(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return "" if value is None else value


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones; the API's are UTC
    return value
