"""What `adsentinel run --once` did, as tables: training and detection per account, the alerts
delivered, and which accounts' alerts went nowhere because they have no channel.

Pure formatting: the jobs' result dicts (:mod:`adsentinel.worker.embedded`) and account names
in, rich renderables out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

LEVELS = ("campaign", "adset", "ad")
SEVERITIES = ("critical", "high", "medium", "low")


def training_table(results: Mapping[Any, Mapping[str, Any]], names: Mapping[int, str]) -> Table:
    """One row per account: models trained / skipped / failed per level, and the time."""
    table = Table(title="training")
    for column in ("account", *LEVELS, "seconds", "error"):
        table.add_column(column, justify="right" if column in (*LEVELS, "seconds") else "left",
                         overflow="fold")
    for account_id, result in results.items():
        if "error" in result:
            table.add_row(_name(account_id, names), "", "", "", "", escape(result["error"]))
            continue
        cells = [_counts(result.get(level) or {}) for level in LEVELS]
        seconds = result.get("training_duration_seconds")
        table.add_row(_name(account_id, names), *cells,
                      "" if seconds is None else f"{seconds:.1f}", "")
    return table


def detection_table(results: Mapping[Any, Mapping[str, Any]], names: Mapping[int, str]) -> Table:
    """One row per account: anomalies by severity, alerts queued, sync and refused models."""
    table = Table(title="detection")
    for column in ("account", "anomalies", *SEVERITIES, "alerts queued", "sync", "notes"):
        table.add_column(column, overflow="fold",
                         justify="right" if column in ("anomalies", *SEVERITIES, "alerts queued")
                         else "left")
    for account_id, result in results.items():
        if "anomalies" not in result:
            table.add_row(_name(account_id, names), *[""] * (len(SEVERITIES) + 3),
                          escape(str(result.get("error", ""))))
            continue
        by_severity = result.get("by_severity") or {}
        alerts = result.get("alerts") or {}
        queued = (escape(str(alerts["error"])) if "error" in alerts
                  else str(alerts.get("enqueued", 0)))
        notes = []
        if result.get("refused_models"):
            notes.append(f"{result['refused_models']} model(s) refused, campaigns retrained")
        table.add_row(_name(account_id, names), str(result["anomalies"]),
                      *(str(by_severity.get(s, 0)) for s in SEVERITIES), queued,
                      _sync_text(result.get("sync")), escape("; ".join(notes)))
    return table


def delivery_table(alerts: Mapping[str, Any] | None,
                   digests: Mapping[str, Any] | None) -> Table:
    """Messages sent, retrying, failed and held, and digests sent."""
    table = Table(title="alert delivery")
    for column in ("sent", "retrying", "failed", "held", "digests", "error"):
        table.add_column(column, justify="left" if column == "error" else "right")
    alerts, digests = alerts or {}, digests or {}
    error = "; ".join(str(part["error"]) for part in (alerts, digests) if "error" in part)
    table.add_row(*(str(alerts.get(k, 0)) for k in ("sent", "retrying", "failed", "held")),
                  str(digests.get("digests", 0)), escape(error))
    return table


def unalerted_accounts(detection: Mapping[Any, Mapping[str, Any]], names: Mapping[int, str],
                       with_channel: set[int]) -> list[str]:
    """Names of the accounts detection ran on that have no active alert channel: their
    anomalies are stored but no alert is sent."""
    return [_name(account_id, names) for account_id in detection
            if int(account_id) not in with_channel]


def _counts(level: Mapping[str, Any]) -> str:
    return (f"{level.get('trained', 0)} trained / {level.get('skipped', 0)} skipped"
            + (f" / {level['failed']} failed" if level.get("failed") else ""))


def _sync_text(sync: Mapping[str, Any] | None) -> str:
    if not sync:
        return "-"
    if "error" in sync:
        return escape(f"failed: {sync['error']}")
    return escape(", ".join(f"{k} {v}" for k, v in sync.items()
                            if isinstance(v, (int, float, str)) and k != "account_id"))


def _name(account_id: Any, names: Mapping[int, str]) -> str:
    return escape(names.get(int(account_id), f"account {account_id}"))
