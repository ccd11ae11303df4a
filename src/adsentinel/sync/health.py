"""Whether an account's Meta sync is broken, and the message that says so. Pure: the runs and
the account's attention mark in, a verdict and a payload out; storing and sending it is
:mod:`adsentinel.service.sync`'s job.

A sync is *broken* when a person must act (an expired token, a lost permission, a retired Graph
API version, a missing ``appsecret_proof``: the account's ``needs_attention``), or when it has
failed ``alert_after`` times in a row. It is broken *since* the start of the first failed run
of that streak; one message per channel and streak is sent (the outbox key carries the first
failed run's id), so an hourly failure does not repeat it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SYNC_BROKEN = "sync_broken"  # the outbox kind, rendered by adsentinel.alerts.messages


@dataclass(frozen=True)
class RunOutcome:
    """One sync run, newest first in what :func:`sync_health` reads."""

    id: int
    status: str
    started_at: datetime
    error: str | None


@dataclass(frozen=True)
class SyncHealth:
    """``broken``: a message is due; ``since``/``first_failed_run_id``: the failure streak."""

    broken: bool
    failed_in_a_row: int
    since: datetime | None
    first_failed_run_id: int | None
    last_error: str | None


def sync_health(runs_newest_first: Sequence[RunOutcome], *, needs_attention: str | None,
                alert_after: int) -> SyncHealth:
    """The failure streak at the head of ``runs_newest_first`` and whether it is broken."""
    streak: list[RunOutcome] = []
    for run in runs_newest_first:
        if run.status == "running" and not streak:
            continue  # the run in progress says nothing yet
        if run.status != "failed":
            break
        streak.append(run)
    if not streak:
        return SyncHealth(False, 0, None, None, None)
    first = streak[-1]
    broken = bool(needs_attention) or len(streak) >= alert_after
    return SyncHealth(broken, len(streak), first.started_at, first.id, streak[0].error)


def broken_payload(*, account_id: int, account_name: str, currency: str, health: SyncHealth,
                   needs_attention: str | None, url: str) -> dict[str, Any]:
    """The outbox payload of a "sync broken for account X since T: what to do" message."""
    since = health.since.strftime("%Y-%m-%d %H:%M UTC") if health.since else "unknown"
    runs = f"{health.failed_in_a_row} sync{'s' if health.failed_in_a_row != 1 else ''}"
    return {
        "kind": SYNC_BROKEN,
        "account": {"id": account_id, "name": account_name, "currency": currency},
        "since": since,
        "failed_in_a_row": health.failed_in_a_row,
        "text": f"The Meta sync of account {account_name} is broken since {since}: {runs} "
                f"failed in a row, so its numbers are not fresh and its anomalies are not "
                f"judged on new data. Last error: {health.last_error or 'none recorded'}",
        "what_to_do": needs_attention or (
            "read the last error above (also in `adsentinel accounts list`); the sync is "
            "retried every hour, and `adsentinel sync --account ...` runs it now"),
        "url": url,
    }
