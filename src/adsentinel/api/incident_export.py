"""The dashboard's list as a file: CSV or XLSX of the filtered incidents, every page, in the
list's order.

A text cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) gets a
leading apostrophe, so a spreadsheet shows it instead of running it as a formula (an ad's name
is whatever its advertiser typed). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from fastapi.responses import Response

from adsentinel.api.incident_list import IncidentRow
from adsentinel.detect import impact

EXPORT_FORMATS = ("csv", "xlsx")
COLUMNS = ("anomaly_id", "account", "account_meta_id", "level", "name", "meta_id",
           "campaign_meta_id", "adset_meta_id", "day", "started", "duration_days", "metric",
           "severity", "score", "money_at_stake", "currency", "next_step", "status", "message",
           "link")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def inert(value: Any) -> Any:
    """``value`` safe for a spreadsheet cell: text that would start a formula is quoted."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_record(row: IncidentRow, base_url: str) -> list[Any]:
    """One incident as the values of :data:`COLUMNS`."""
    a, path = row.anomaly, row.path
    by_level = {e.level: e.platform_id for e in path}
    return [a.id, row.account.name, row.account.platform_account_id, row.entity.level,
            row.entity.name or row.entity.platform_id, row.entity.platform_id,
            by_level.get("campaign"), by_level.get("adset"), a.day, row.started,
            row.duration_days, a.metric, a.severity, round(a.score, 1),
            None if row.money_at_stake is None else round(row.money_at_stake, 2),
            row.account.currency, impact.next_step(row.kind, level=row.entity.level,
                                                   since=row.started), a.status,
            a.message, f"{base_url.rstrip('/')}/entities/{a.entity_id}#anomaly-{a.id}"]


def export_csv(rows: list[IncidentRow], base_url: str) -> bytes:
    """The rows as UTF-8 CSV with a header (BOM first, so Excel reads the accents)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_text(inert(v)) for v in export_record(row, base_url)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def export_xlsx(rows: list[IncidentRow], base_url: str) -> bytes:
    """The rows as one XLSX sheet, dates as dates and numbers as numbers."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("incidents")
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([inert(v) for v in export_record(row, base_url)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export_response(rows: list[IncidentRow], format_: str, *, base_url: str) -> Response:
    """The download of ``rows`` as ``csv`` or ``xlsx``."""
    body = export_xlsx(rows, base_url) if format_ == "xlsx" else export_csv(rows, base_url)
    name = f"adsentinel-incidents-{date.today().isoformat()}.{format_}"
    return Response(body, media_type=_MEDIA_TYPES[format_],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _text(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return "" if value is None else value


__all__ = ["COLUMNS", "EXPORT_FORMATS", "export_csv", "export_response", "export_xlsx", "inert"]
