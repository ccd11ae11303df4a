"""What an alert says (pure, no I/O): an incident becomes a channel-independent payload, and
the payload becomes Slack blocks, a JSON webhook body or an email.

The payload is what the outbox stores, so a message retried a day later says exactly what it
said when it was planned. Several incidents of one entity that open (or recover) together are
one message: the worst is the ``incident``, the others are listed under ``also``. Every message
carries: account, entity path (campaign > ad set > ad),
metric, actual vs expected (in the account's currency), severity, duration so far, the money at
stake of its days so far (their stored ``impact_amount``, when detection stored one), the next
step of its kind (:func:`kind_next_step`) and a link to the dashboard page
of the entity (``{public_url}/entities/{entity_id}``).

Messages speak the account's language (``account.locale`` in the payload: ``en`` or ``pt_BR``,
from :class:`MessageContext`), with its number, money and date formats. The payload's keys are
machine-readable and the same in every language; its ``*_text`` and ``metric_label`` values,
and every rendering (subject, text, Slack blocks, the webhook's ``subject`` and ``text``) are
in the account's language (``message`` is detection's English sentence, ``message_text`` the
same in the account's language). Dates in the payload stay ISO (``2026-11-18``); renderings show
them as the language writes them (``18/11/2026``). Translations are in the ``messages``
catalog (:mod:`adsentinel.i18n`).

Names come from ad accounts, so they are data, never markup: every rendering first replaces
control characters in them by spaces (a line break in a name cannot add a line to an email or
break its Subject header), and Slack, whose text is mrkdwn, gets every value with ``&``, ``<``
and ``>`` escaped (:func:`slack_escape`), so a name like ``<!channel>`` or ``<https://x|y>``
is shown as written instead of pinging the channel or planting a disguised link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
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
from adsentinel.detect.impact import NEXT_STEPS, anomaly_kind
from adsentinel.i18n import DEFAULT_LOCALE, N_, Language, language, supported_locale
from adsentinel.jsonable import finite_or

#: Children listed in one message; the rest are counted ("and 12 more").
MAX_CHILDREN_SHOWN = 5

_METRIC_LABELS = {
    "spend": N_("Spend"), "impressions": N_("Impressions"), "leads": N_("Leads"),
    "clicks": N_("Clicks"), "ctr": N_("CTR"), "conversion_rate": N_("Conversion rate"),
    "cpc": N_("CPC"), "cpm": N_("CPM"), "cpl": N_("CPL"), "frequency": N_("Frequency"),
    "reach": N_("Reach"), "multivariate": N_("Overall pattern"),
}  # fmt: skip
_LEVEL_LABELS = {"campaign": N_("Campaign"), "adset": N_("Ad set"), "ad": N_("Ad"),
                 "entity": N_("Entity")}
_DIRECTIONS = {"up": N_("up"), "down": N_("down")}
_SEVERITIES = {"low": N_("low"), "medium": N_("medium"), "high": N_("high"),
               "critical": N_("critical")}
#: why an incident closed (adsentinel.alerts.incidents), told in the recovery message
_REASONS = (N_("back to normal"), N_("marked as not an incident"), N_("restated data is normal"))
TEST = "test"
#: the Meta sync of an account keeps failing (written by adsentinel.sync.service)
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
    #: the language of the account's messages (``en``, ``pt_BR``)
    locale: str = DEFAULT_LOCALE

    @property
    def language(self) -> Language:
        """Messages and formats of the account's language (English if ``locale`` has no
        catalog)."""
        return language(supported_locale(self.locale) or DEFAULT_LOCALE)

    def account_facts(self) -> dict[str, Any]:
        """The payload's ``account`` object."""
        return {"id": self.account_id, "name": self.account_name, "currency": self.currency,
                "locale": self.language.locale}

    def entity_url(self, entity_id: int) -> str:
        """The dashboard page of an entity."""
        return f"{self.public_url.rstrip('/')}/entities/{entity_id}"


def metric_label(metric: str, lang: Language | None = None) -> str:
    """``cpl`` -> ``CPL``, as marketers write it (in ``lang``, English by default)."""
    label = _METRIC_LABELS.get(metric)
    return (lang or language()).gettext(label) if label else metric


def ratio_text(actual: float, expected: float, lang: Language | None = None) -> str:
    """``3.2x`` above, ``-45%`` below, ``new`` when nothing was expected."""
    return (lang or language()).ratio(actual, expected)


def payload_language(payload: Mapping[str, Any]) -> Language:
    """The language a payload is told in (``account.locale``; English for payloads stored
    before languages existed, or naming a language without a catalog)."""
    account = payload.get("account") or {}
    return language(supported_locale(account.get("locale")) or DEFAULT_LOCALE)


def _figures(fact: AnomalyFact, ctx: MessageContext) -> dict[str, Any]:
    lang = ctx.language
    return {
        "entity_id": fact.entity_id,
        "entity_level": ctx.levels.get(fact.entity_id, "entity"),
        "entity_path": ctx.paths.get(fact.entity_id, f"entity {fact.entity_id}"),
        "url": ctx.entity_url(fact.entity_id),
        "metric": fact.metric,
        "metric_label": metric_label(fact.metric, lang),
        "direction": fact.direction,
        "day": fact.day.isoformat(),
        "actual": finite_or(fact.actual),
        "expected": finite_or(fact.expected),
        "actual_text": lang.metric_value(fact.metric, finite_or(fact.actual), ctx.currency),
        "expected_text": lang.metric_value(fact.metric, finite_or(fact.expected), ctx.currency),
        "ratio_text": ratio_text(fact.actual, fact.expected, lang),
        "severity": fact.severity,
        "score": round(float(fact.score), 1),
        "anomaly_id": fact.id,
    }


def _money_and_next_step(incident: Incident, ctx: MessageContext, start: date
                         ) -> dict[str, Any]:
    """Money at stake of the incident's days so far (``impact_amount``, None when detection
    stored none) and the next step of its kind, in the account's language."""
    lang, latest = ctx.language, incident.latest
    amount = finite_or(incident.impact_amount)
    return {
        "impact_amount": amount,
        "impact_text": lang.money(amount, ctx.currency) if amount is not None else None,
        "next_step": next_step_text(lang, latest.metric, latest.direction, latest.drivers,
                                    level=ctx.levels.get(latest.entity_id, "entity"),
                                    since=start),
    }


def next_step_text(lang: Language, metric: str, direction: str,
                   drivers: Mapping[str, Any] | None, *, level: str, since: date) -> str:
    """What to check first for an anomaly of this kind since ``since``, in ``lang`` (the day
    written as the language writes days)."""
    return kind_next_step(lang, anomaly_kind(metric, direction, drivers), level=level,
                          since_text=lang.day(since))


def kind_next_step(lang: Language, kind: str, *, level: str, since_text: str) -> str:
    """The next step of ``kind`` (:data:`adsentinel.detect.impact.NEXT_STEPS`) for an entity of
    ``level``, in ``lang``; ``since_text`` is the day as the reader's page or message writes it.
    Unknown kinds get the combination's step."""
    template = NEXT_STEPS.get(kind, NEXT_STEPS["unusual_combination"])
    return lang.gettext(template, level=this_level(lang, level), since=since_text)


def this_level(lang: Language, level: str) -> str:
    """What a next step puts for ``%(level)s``. The English templates say "this %(level)s", so
    English gets the level's word; a translation holds only ``%(level)s`` and the catalog gives
    the whole phrase (context ``of this level``), its words agreeing with the level's gender:
    pt_BR "deste anúncio", "deste conjunto de anúncios", "desta campanha"."""
    if level == "campaign":
        return lang.pgettext("of this level", "campaign")
    if level == "adset":
        return lang.pgettext("of this level", "ad set")
    if level == "ad":
        return lang.pgettext("of this level", "ad")
    return lang.pgettext("of this level", "entity")


def detail_text(fact: AnomalyFact, ctx: MessageContext) -> str:
    """Detection's sentence of ``fact`` in the account's language, rebuilt from the anomaly's
    stored facts (:func:`adsentinel.detect.sentences.localized_message`: the stored English
    when they do not rebuild it)."""
    from adsentinel.detect.sentences import localized_message

    return localized_message(
        fact.message, lang=ctx.language, metric=fact.metric, actual=fact.actual,
        expected=fact.expected, detectors=fact.detectors, drivers=fact.drivers,
        currency=ctx.currency, entity_type=ctx.levels.get(fact.entity_id, "entity"),
        is_partial_day=fact.is_partial_day)


def incident_payload(planned: PlannedMessage, ctx: MessageContext, *, today: date) -> dict[str, Any]:
    """The stored payload of one planned message (``opened``, ``update`` or ``recovered``)."""
    incident = planned.incident
    if incident is None:  # recovered after retraction: say it with what was last sent
        assert planned.previous is not None
        payload: dict[str, Any] = json.loads(json.dumps(planned.previous.payload))  # a copy
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
        message_text=detail_text(incident.latest, ctx),
        calendar=incident.calendar_label,
        partial_day=incident.latest.is_partial_day,
        **_money_and_next_step(incident, ctx, start),
    )
    children = [_figures(child, ctx) for child in incident.children]
    return {
        "kind": planned.kind,
        "account": ctx.account_facts(),
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
                    message=incident.latest.message,
                    message_text=detail_text(incident.latest, ctx),
                    **_money_and_next_step(incident, ctx, incident.key.start_day))
        items.append(head)
    return {
        "kind": DIGEST,
        "account": ctx.account_facts(),
        "day": day.isoformat(),
        "incidents": items,
        "sent_for": day.isoformat(),
    }


def check_payload(ctx: MessageContext, channel_id: int) -> dict[str, Any]:
    """A message that only proves the channel works (``adsentinel alerts channel test``)."""
    return {
        "kind": TEST,
        "account": ctx.account_facts(),
        "text": ctx.language.gettext(
            "A test message from adsentinel for alert channel %(channel)s: real alerts will "
            "arrive here the same way. Nothing needs to be done.", channel=channel_id),
        "url": ctx.public_url,
    }


# --- rendering --------------------------------------------------------------------------------


def _map_text(value: Any, change: Callable[[str], str]) -> Any:
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
    plain: dict[str, Any] = _map_text(payload, one_line)  # a mapping maps to a dict
    return plain


def subject_of(payload: Mapping[str, Any]) -> str:
    """One line: ``[HIGH] Acme: CPL up on Campaign > Ad set (3 days)``, in the payload's
    language."""
    payload = plain_values(payload)
    lang = payload_language(payload)
    _ = lang.gettext
    account = payload["account"]["name"]
    if payload["kind"] == TEST:
        return _("[TEST] %(account)s: adsentinel alerts reach this channel", account=account)
    if payload["kind"] == SYNC_BROKEN:
        return _("[SYNC BROKEN] %(account)s: no fresh Meta data since %(since)s",
                 account=account, since=payload.get("since_text") or payload["since"])
    if payload["kind"] == DIGEST:
        return lang.ngettext("[digest] %(account)s: %(num)d incident on %(day)s",
                             "[digest] %(account)s: %(num)d incidents on %(day)s",
                             len(payload["incidents"]), account=account,
                             day=_day(lang, payload["day"]))
    inc = payload["incident"]
    more = len(payload.get("also") or ())
    what = _what(lang, inc)
    if more:
        what = lang.ngettext("%(metric)s %(direction)s (+%(num)d more metric) on %(path)s",
                             "%(metric)s %(direction)s (+%(num)d more metrics) on %(path)s",
                             more, metric=inc["metric_label"],
                             direction=_(_DIRECTIONS.get(inc["direction"], inc["direction"])),
                             path=inc["entity_path"])
    if payload["kind"] == RECOVERED:
        return _("[RECOVERED] %(account)s: %(what)s", account=account, what=what)
    prefix = _("[WORSE] ") if payload["kind"] == UPDATE else ""
    return prefix + lang.ngettext("[%(severity)s] %(account)s: %(what)s (%(num)d day)",
                                  "[%(severity)s] %(account)s: %(what)s (%(num)d days)",
                                  inc.get("duration_days", 1), account=account, what=what,
                                  severity=_severity(lang, inc["severity"]).upper())


def _what(lang: Language, inc: Mapping[str, Any]) -> str:
    """``CPL up on Black Friday``."""
    return lang.gettext("%(metric)s %(direction)s on %(path)s", metric=inc["metric_label"],
                        direction=lang.gettext(_DIRECTIONS.get(inc["direction"],
                                                               inc["direction"])),
                        path=inc["entity_path"])


def _severity(lang: Language, severity: str) -> str:
    return lang.gettext(_SEVERITIES[severity]) if severity in _SEVERITIES else severity


def _day(lang: Language, iso_day: str | None) -> str:
    """A payload's ISO day as the language writes it (left as it is if it is not a day)."""
    try:
        return lang.day(date.fromisoformat(str(iso_day)))
    except ValueError:
        return str(iso_day)


def _incident_lines(lang: Language, inc: Mapping[str, Any], *,
                    with_next_step: bool = True) -> list[str]:
    _ = lang.gettext
    level = inc["entity_level"]
    lines = [
        _("%(level)s: %(path)s", level=_(_LEVEL_LABELS[level]) if level in _LEVEL_LABELS
          else level.capitalize(), path=inc["entity_path"]),
        _("Metric: %(metric)s %(actual)s vs %(expected)s expected (%(ratio)s)",
          metric=inc["metric_label"], actual=inc["actual_text"], expected=inc["expected_text"],
          ratio=inc["ratio_text"]),
        _("Severity: %(severity)s (score %(score)s)", severity=_severity(lang, inc["severity"]),
          score=lang.number(inc["score"], decimals=1)),
        lang.ngettext("Duration so far: %(num)d day (since %(start)s, latest %(latest)s)",
                      "Duration so far: %(num)d days (since %(start)s, latest %(latest)s)",
                      inc.get("duration_days", 1), start=_day(lang, inc["start_day"]),
                      latest=_day(lang, inc["latest_day"])),
    ]
    if inc.get("impact_text"):
        lines.append(_("Money at stake so far: %(amount)s", amount=inc["impact_text"]))
    if inc.get("calendar"):
        lines.append(_("Calendar: %(label)s", label=inc["calendar"]))
    if inc.get("message"):  # payloads planned before message_text existed: the English
        lines.append(_("Detail: %(message)s", message=inc.get("message_text") or inc["message"]))
    if with_next_step and inc.get("next_step"):
        lines.append(_("Next step: %(step)s", step=inc["next_step"]))
    lines.append(_("Dashboard: %(url)s", url=inc["url"]))
    return lines


def render_text(payload: Mapping[str, Any]) -> str:
    """The plain-text body (email, and the webhook's ``text`` field), in the payload's
    language."""
    payload = plain_values(payload)
    lang = payload_language(payload)
    _ = lang.gettext
    lines = [subject_of(payload), ""]
    if payload["kind"] == TEST:
        return "\n".join([*lines, payload["text"], _("Dashboard: %(url)s", url=payload["url"])]
                         ) + "\n"
    if payload["kind"] == SYNC_BROKEN:
        return "\n".join([*lines, payload["text"],
                          _("What to do: %(what)s", what=payload["what_to_do"]),
                          _("Dashboard: %(url)s", url=payload["url"])]) + "\n"
    if payload["kind"] == DIGEST:
        if not payload["incidents"]:
            lines.append(_("No incidents."))
        for number, inc in enumerate(payload["incidents"], 1):
            lines.append(f"{number}. [{_severity(lang, inc['severity']).upper()}] "
                         f"{_what(lang, inc)}")
            lines.extend("   " + line for line in _incident_lines(lang, inc)[1:])
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
    inc = payload["incident"]
    lines.append(_("Account: %(account)s", account=payload["account"]["name"]))
    if payload["kind"] == RECOVERED:
        lines.append(_("Recovered: %(reason)s", reason=_(payload.get("reason") or _REASONS[0])))
    lines.extend(_incident_lines(lang, inc, with_next_step=payload["kind"] != RECOVERED))
    for other in payload.get("also") or ():
        lines.append(_("Also: %(metric)s %(direction)s %(actual)s vs %(expected)s expected "
                       "(%(ratio)s), %(severity)s, since %(start)s",
                       metric=other["metric_label"],
                       direction=_(_DIRECTIONS.get(other["direction"], other["direction"])),
                       actual=other["actual_text"], expected=other["expected_text"],
                       ratio=other["ratio_text"], severity=_severity(lang, other["severity"]),
                       start=_day(lang, other["start_day"])))
    if payload["children_total"]:
        lines += ["", _("Worst of %(total)d affected below it:",
                        total=payload["children_total"])]
        for child in payload["children"]:
            lines.append(f"- {child['entity_path']}: {child['metric_label']} "
                         f"{child['actual_text']} vs {child['expected_text']} "
                         f"({_severity(lang, child['severity'])}) {child['url']}")
        more = payload["children_total"] - len(payload["children"])
        if more > 0:
            lines.append(_("- and %(more)d more", more=more))
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
