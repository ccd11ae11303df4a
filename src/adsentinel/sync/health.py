"""Whether an account's Meta sync is broken, and the message that says so. Pure: the runs and
the account's attention mark in, a verdict and a payload out; storing and sending it is
:mod:`adsentinel.sync.service`'s job.

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

from adsentinel.i18n import DEFAULT_LOCALE, N_, language, supported_locale
from adsentinel.sync.error_kinds import attention_sentence, error_sentence

SYNC_BROKEN = "sync_broken"  # the outbox kind, rendered by adsentinel.alerts.messages


@dataclass(frozen=True)
class RunOutcome:
    """One sync run, newest first in what :func:`sync_health` reads."""

    id: int
    status: str
    started_at: datetime
    error: str | None
    #: the kind of failure (:mod:`adsentinel.sync.error_kinds`); None for older runs
    error_kind: str | None = None


@dataclass(frozen=True)
class SyncHealth:
    """``broken``: a message is due; ``since``/``first_failed_run_id``: the failure streak."""

    broken: bool
    failed_in_a_row: int
    since: datetime | None
    first_failed_run_id: int | None
    last_error: str | None
    last_error_kind: str | None = None


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
    return SyncHealth(broken, len(streak), first.started_at, first.id, streak[0].error,
                      streak[0].error_kind)


#: the message's explanation, by the streak's length (one run, or several)
_BROKEN_ONE = N_("The Meta sync of account %(account)s is broken since %(since)s: %(num)d sync "
                 "failed in a row, so its numbers are not fresh and its anomalies are not judged "
                 "on new data. Last error: %(error)s")
_BROKEN_MANY = N_("The Meta sync of account %(account)s is broken since %(since)s: %(num)d syncs "
                  "failed in a row, so its numbers are not fresh and its anomalies are not "
                  "judged on new data. Last error: %(error)s")
_NO_ERROR = N_("none recorded")
_UNKNOWN = N_("unknown")
_RETRY = N_("read the last error above (also in `adsentinel accounts list`); the sync is "
            "retried every hour, and `adsentinel sync --account ...` runs it now")


def broken_payload(*, account_id: int, account_name: str, currency: str, health: SyncHealth,
                   needs_attention: str | None, url: str, locale: str | None = None,
                   needs_attention_kind: str | None = None) -> dict[str, Any]:
    """The outbox payload of a "sync broken for account X since T: what to do" message.

    ``text`` and ``what_to_do`` are in the account's language (``locale``, named in
    ``account.locale`` as alert payloads do; English when omitted), ``since_text`` is the
    streak's start as that language writes it; ``since`` stays ``2026-11-18 14:00 UTC``.
    The last error is told by its kind (``error_kind``, from Meta's code) in that language,
    Meta's own words kept in brackets; the attention mark by the what-to-do of its kind. A
    person's mark, or an error of a run from before kinds were stored, stays as written
    (English unless the catalog holds its exact text).
    """
    lang = language(supported_locale(locale) or DEFAULT_LOCALE)
    since = health.since.strftime("%Y-%m-%d %H:%M UTC") if health.since else "unknown"
    since_text = (f"{lang.day(health.since.date())} {health.since.strftime('%H:%M')} UTC"
                  if health.since else lang.gettext(_UNKNOWN))
    return {
        "kind": SYNC_BROKEN,
        "account": {"id": account_id, "name": account_name, "currency": currency,
                    "locale": lang.locale},
        "since": since,
        "since_text": since_text,
        "failed_in_a_row": health.failed_in_a_row,
        "error_kind": health.last_error_kind,
        "text": lang.gettext(_BROKEN_ONE if health.failed_in_a_row == 1 else _BROKEN_MANY,
                             account=account_name, since=since_text,
                             num=health.failed_in_a_row,
                             error=(error_sentence(lang, health.last_error_kind,
                                                   health.last_error)
                                    if health.last_error or health.last_error_kind
                                    else lang.gettext(_NO_ERROR))),
        "what_to_do": (attention_sentence(lang, needs_attention_kind, needs_attention)
                       if needs_attention else lang.gettext(_RETRY)),
        "url": url,
    }
