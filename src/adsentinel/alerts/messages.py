"""What an alert says (pure, no I/O): an incident becomes a channel-independent payload, and
the payload becomes Slack blocks, a JSON webhook body or an email.

The payload is what the outbox stores, so a message retried a day later says exactly what it
said when it was planned. Several incidents of one entity that open (or recover) together are
one message: the worst is the ``incident``, the others are listed under ``also``. Every message
carries: account, entity path (campaign > ad set > ad),
metric, actual vs expected (in the account's currency), severity, duration so far and a link to
the dashboard page of the entity (``{public_url}/entities/{entity_id}``).

Names come from ad accounts, so they are data, never markup: every rendering first replaces
control characters in them by spaces (a line break in a name cannot add a line to an email or
break its Subject header), and Slack, whose text is mrkdwn, gets every value with ``&``, ``<``
and ``>`` escaped (:func:`slack_escape`), so a name like ``<!channel>`` or ``<https://x|y>``
is shown as written instead of pinging the channel or planting a disguised link.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from adsentinel.alerts.incidents import (
    DIGEST,
    RECOVERED,
    UPDATE,
    AnomalyFact,
    Incident,
    PlannedMessage,
)
from adsentinel.detect.anomaly_detector import format_metric

#: Children listed in one message; the rest are counted ("and 12 more").
MAX_CHILDREN_SHOWN = 5

_METRIC_LABELS = {
    "spend": "Spend", "impressions": "Impressions", "leads": "Leads", "clicks": "Clicks",
    "ctr": "CTR", "conversion_rate": "Conversion rate", "cpc": "CPC", "cpm": "CPM",
    "cpl": "CPL", "frequency": "Frequency", "reach": "Reach", "multivariate": "Overall pattern",
}  # fmt: skip
TEST = "test"
#: the Meta sync of an account keeps failing (written by adsentinel.service.sync)
SYNC_BROKEN = "sync_broken"
_UNFOLDED = SMTP.clone(max_line_length=998)  # RFC 5322's hard limit
#: C0 and C1 controls, DEL, and Unicode's line and paragraph separators
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class MessageContext:
    """Account facts a message needs: names, currency, entity paths and the dashboard URL."""

    account_id: int
    account_name: str
    currency: str
    paths: Mapping[int, str]
    levels: Mapping[int, str]
    public_url: str

    def entity_url(self, entity_id: int) -> str:
        """The dashboard page of an entity."""
        return f"{self.public_url.rstrip('/')}/entities/{entity_id}"


def metric_label(metric: str) -> str:
    """``cpl`` -> ``CPL``, as marketers write it."""
    return _METRIC_LABELS.get(metric, metric)


def ratio_text(actual: float, expected: float) -> str:
    """``3.2x`` above, ``-45%`` below, ``new`` when nothing was expected."""
    if not math.isfinite(expected) or expected <= 0 or not math.isfinite(actual):
        return "new"
    ratio = actual / expected
    return f"{ratio:.1f}x" if ratio >= 1 else f"{100 * (ratio - 1):+.0f}%"


def _figures(fact: AnomalyFact, ctx: MessageContext) -> dict[str, Any]:
    return {
        "entity_id": fact.entity_id,
        "entity_level": ctx.levels.get(fact.entity_id, "entity"),
        "entity_path": ctx.paths.get(fact.entity_id, f"entity {fact.entity_id}"),
        "url": ctx.entity_url(fact.entity_id),
        "metric": fact.metric,
        "metric_label": metric_label(fact.metric),
        "direction": fact.direction,
        "day": fact.day.isoformat(),
        "actual": _finite(fact.actual),
        "expected": _finite(fact.expected),
        "actual_text": format_metric(fact.metric, fact.actual, ctx.currency),
        "expected_text": format_metric(fact.metric, fact.expected, ctx.currency),
        "ratio_text": ratio_text(fact.actual, fact.expected),
        "severity": fact.severity,
        "score": round(float(fact.score), 1),
        "anomaly_id": fact.id,
    }


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def incident_payload(planned: PlannedMessage, ctx: MessageContext, *, today: date) -> dict[str, Any]:
    """The stored payload of one planned message (``opened``, ``update`` or ``recovered``)."""
    incident = planned.incident
    if incident is None:  # recovered after retraction: say it with what was last sent
        assert planned.previous is not None
        payload = json.loads(json.dumps(planned.previous.payload))
        payload.update(kind=planned.kind, reason=planned.reason, sent_for=today.isoformat())
        return payload
    start = planned.key.start_day
    head = _figures(incident.latest, ctx)
    head.update(
        severity=incident.severity,
        start_day=start.isoformat(),
        latest_day=incident.latest.day.isoformat(),
        duration_days=incident.duration_days(start),
        message=incident.latest.message,
        calendar=incident.calendar_label,
        partial_day=incident.latest.is_partial_day,
    )
    children = [_figures(child, ctx) for child in incident.children]
    return {
        "kind": planned.kind,
        "account": {"id": ctx.account_id, "name": ctx.account_name, "currency": ctx.currency},
        "incident": head,
        "children": children[:MAX_CHILDREN_SHOWN],
        "children_total": len(children),
        "also": [],  # the entity's other incidents told in the same message (filled by the planner)
        "reason": planned.reason,
        "sent_for": today.isoformat(),
    }


def digest_payload(ctx: MessageContext, incidents: Sequence[Incident], *, day: date,
                   start_days: Mapping[int, date] | None = None) -> dict[str, Any]:
    """A daily summary of an account's incidents (for channels in digest mode)."""
    items = []
    for incident in incidents:
        head = _figures(incident.latest, ctx)
        head.update(severity=incident.severity, start_day=incident.key.start_day.isoformat(),
                    latest_day=incident.latest.day.isoformat(),
                    duration_days=incident.duration_days(),
                    children_total=len(incident.children),
                    message=incident.latest.message)
        items.append(head)
    return {
        "kind": DIGEST,
        "account": {"id": ctx.account_id, "name": ctx.account_name, "currency": ctx.currency},
        "day": day.isoformat(),
        "incidents": items,
        "sent_for": day.isoformat(),
    }


def check_payload(ctx: MessageContext, channel_id: int) -> dict[str, Any]:
    """A message that only proves the channel works (``adsentinel alerts channel test``)."""
    return {
        "kind": TEST,
        "account": {"id": ctx.account_id, "name": ctx.account_name, "currency": ctx.currency},
        "text": f"A test message from adsentinel for alert channel {channel_id}: real alerts "
                "will arrive here the same way. Nothing needs to be done.",
        "url": ctx.public_url,
    }


# --- rendering --------------------------------------------------------------------------------


def _map_text(value: Any, change) -> Any:
    """``value`` (a payload or part of one) with ``change`` applied to every string in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: _map_text(item, change) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_text(item, change) for item in value]
    return value


def one_line(text: str) -> str:
    """``text`` with every control character (line breaks, tabs, escapes) replaced by a space."""
    return _CONTROL_CHARACTERS.sub(" ", text)


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's mrkdwn needs them escaped (``&amp;`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with control characters in every value replaced (what renderings use)."""
    return _map_text(payload, one_line)


def subject_of(payload: Mapping[str, Any]) -> str:
    """One line: ``[HIGH] Acme: CPL up on Campaign > Ad set (3 days)``."""
    payload = plain_values(payload)
    account = payload["account"]["name"]
    if payload["kind"] == TEST:
        return f"[TEST] {account}: adsentinel alerts reach this channel"
    if payload["kind"] == SYNC_BROKEN:
        return f"[SYNC BROKEN] {account}: no fresh Meta data since {payload['since']}"
    if payload["kind"] == DIGEST:
        count = len(payload["incidents"])
        return f"[digest] {account}: {count} incident(s) on {payload['day']}"
    inc = payload["incident"]
    more = len(payload.get("also") or ())
    extra = f" (+{more} more metric{'s' if more > 1 else ''})" if more else ""
    what = f"{inc['metric_label']} {inc['direction']}{extra} on {inc['entity_path']}"
    if payload["kind"] == RECOVERED:
        return f"[RECOVERED] {account}: {what}"
    prefix = "[WORSE] " if payload["kind"] == UPDATE else ""
    days = inc.get("duration_days", 1)
    return (f"{prefix}[{inc['severity'].upper()}] {account}: {what} "
            f"({days} day{'s' if days != 1 else ''})")


def _incident_lines(inc: Mapping[str, Any]) -> list[str]:
    days = inc.get("duration_days", 1)
    lines = [
        f"{inc['entity_level'].capitalize()}: {inc['entity_path']}",
        f"Metric: {inc['metric_label']} {inc['actual_text']} vs {inc['expected_text']} expected "
        f"({inc['ratio_text']})",
        f"Severity: {inc['severity']} (score {inc['score']})",
        f"Duration so far: {days} day{'s' if days != 1 else ''} (since {inc['start_day']}, "
        f"latest {inc['latest_day']})",
    ]
    if inc.get("calendar"):
        lines.append(f"Calendar: {inc['calendar']}")
    if inc.get("message"):
        lines.append(f"Detail: {inc['message']}")
    lines.append(f"Dashboard: {inc['url']}")
    return lines


def render_text(payload: Mapping[str, Any]) -> str:
    """The plain-text body (email, and the webhook's ``text`` field)."""
    payload = plain_values(payload)
    lines = [subject_of(payload), ""]
    if payload["kind"] == TEST:
        return "\n".join(lines + [payload["text"], f"Dashboard: {payload['url']}"]) + "\n"
    if payload["kind"] == SYNC_BROKEN:
        return "\n".join(lines + [payload["text"], f"What to do: {payload['what_to_do']}",
                                   f"Dashboard: {payload['url']}"]) + "\n"
    if payload["kind"] == DIGEST:
        if not payload["incidents"]:
            lines.append("No incidents.")
        for number, inc in enumerate(payload["incidents"], 1):
            lines.append(f"{number}. [{inc['severity'].upper()}] {inc['metric_label']} "
                         f"{inc['direction']} on {inc['entity_path']}")
            lines.extend("   " + line for line in _incident_lines(inc)[1:])
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
    inc = payload["incident"]
    lines.append(f"Account: {payload['account']['name']}")
    if payload["kind"] == RECOVERED:
        lines.append(f"Recovered: {payload.get('reason') or 'back to normal'}")
    lines.extend(_incident_lines(inc))
    for other in payload.get("also") or ():
        lines.append(f"Also: {other['metric_label']} {other['direction']} "
                     f"{other['actual_text']} vs {other['expected_text']} expected "
                     f"({other['ratio_text']}), {other['severity']}, since {other['start_day']}")
    if payload["children_total"]:
        lines += ["", f"Worst of {payload['children_total']} affected below it:"]
        for child in payload["children"]:
            lines.append(f"- {child['entity_path']}: {child['metric_label']} "
                         f"{child['actual_text']} vs {child['expected_text']} ({child['severity']}) "
                         f"{child['url']}")
        more = payload["children_total"] - len(payload["children"])
        if more > 0:
            lines.append(f"- and {more} more")
    return "\n".join(lines) + "\n"


def render_slack(payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (notifications) and ``blocks`` (the message).

    Slack cannot drop a repeat by key, so the key's start is shown in the footer: a person can
    still tell a resent message from a new one. Every value is escaped for mrkdwn
    (:func:`slack_escape`); the header is plain text, which Slack shows as written.
    """
    escaped = _map_text(plain_values(payload), slack_escape)
    body = render_text(escaped).split("\n", 2)[-1].strip()
    return {
        "text": subject_of(escaped),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject_of(payload)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"adsentinel ref `{idempotency_key[:12]}`"}]},
        ],
    }


def render_webhook(payload: Mapping[str, Any], idempotency_key: str) -> bytes:
    """The generic webhook body: the payload, its key and text, as canonical JSON bytes (the
    bytes the HMAC signature covers)."""
    document = {**payload, "idempotency_key": idempotency_key, "subject": subject_of(payload),
                "text": render_text(payload)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def render_email(payload: Mapping[str, Any], idempotency_key: str, *, sender: str,
                 recipient: str) -> EmailMessage:
    """An email whose ``Message-ID`` is derived from the idempotency key, so a resent copy has
    the same id (mail clients and servers can drop it). Headers are not folded (a 64-character
    key would otherwise be moved to a continuation line)."""
    message = EmailMessage(policy=_UNFOLDED)
    message["Subject"] = subject_of(payload)
    message["From"] = sender
    message["To"] = recipient
    message["Message-ID"] = f"<{idempotency_key}@adsentinel>"
    message["X-Adsentinel-Idempotency-Key"] = idempotency_key
    message.set_content(render_text(payload))
    return message
