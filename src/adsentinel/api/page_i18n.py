"""The dashboard's languages: the Jinja2 environment with gettext (``dashboard`` catalog) and
the filters that format money, numbers, dates and metric values in the reader's locale.

The locale of a page is decided per request (:func:`request_locale`): the language switch's
cookie, else the browser's ``Accept-Language``, else the ``LOCALE`` setting. Templates mark
text with ``{% trans %}`` or ``_()``; the translations come from the context
(``page_translations``), so one environment serves every language at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from adsentinel.alerts.messages import kind_next_step
from adsentinel.i18n import (
    MESSAGES_DOMAIN,
    language,
    negotiate_locale,
    requested_locale,
    translations,
)
from adsentinel.sync.error_kinds import attention_sentence
from adsentinel.timezones import as_utc

DOMAIN = "dashboard"
LANGUAGE_COOKIE = "adsentinel_lang"


def request_locale(request: Request) -> str:
    """The reader's locale: the language cookie, else ``Accept-Language``, else the server's
    ``LOCALE`` setting (English by default)."""
    return negotiate_locale(request.headers.get("accept-language"),
                            request.cookies.get(LANGUAGE_COOKIE),
                            default=request.app.state.settings.locale)


def asked_locale(request: Request) -> str | None:
    """The locale the request itself asks for (the language cookie, else a supported language
    of ``Accept-Language``), None when it says none."""
    return requested_locale(request.headers.get("accept-language"),
                            request.cookies.get(LANGUAGE_COOKIE))


def page_context(locale: str) -> dict[str, Any]:
    """What a template needs to speak ``locale``."""
    return {"locale": locale, "page_translations": translations(locale, DOMAIN),
            "page_gettext": page_gettext(locale), "html_lang": locale.replace("_", "-")}


@lru_cache(maxsize=8)
def page_gettext(locale: str) -> Callable[[str], str]:
    """``gettext`` of the ``dashboard`` catalog, falling back to the shared ``messages``
    catalog (the next steps and words that alerts, the report and the CLI show too)."""
    own, shared = translations(locale, DOMAIN), translations(locale, MESSAGES_DOMAIN)

    def gettext(message: str) -> str:
        text = own.gettext(message)
        return text if text != message else shared.gettext(message)

    return gettext


def next_step_text(kind: str, level: str, since: date, locale: str) -> str:
    """Detection's next step for an incident of ``kind`` in ``locale``, with the date as the
    page writes it: the ``messages`` catalog's words, as alerts and the report say it
    (:func:`adsentinel.alerts.messages.kind_next_step`)."""
    return kind_next_step(language(locale), kind, level=level,
                          since_text=format_date(since, "medium", locale=locale))


def money(amount: float | None, currency: str, locale: str) -> str:
    """``R$ 1.564,97`` (pt-BR) or ``R$ 1,564.97`` (en): as alerts and the report write it
    (:meth:`adsentinel.i18n.Language.money`)."""
    if amount is None or not math.isfinite(amount):
        return "–"
    return language(locale).money(amount, (currency or "USD").upper())


def metric_value(value: float | None, metric: str, currency: str, locale: str) -> str:
    """A metric's value as it is read: money, percent, a count or a plain ratio."""
    if value is None or not math.isfinite(value):
        return "–"
    return language(locale).metric_value(metric, value, currency or "USD")


def ratio(actual: float | None, expected: float | None, locale: str) -> str:
    """``3.2x`` above expected, ``-45%`` below (:meth:`adsentinel.i18n.Language.ratio`)."""
    return language(locale).ratio(actual, expected)


def anomaly_message(anomaly: Any, currency: str, level: str, locale: str) -> str:
    """Detection's sentence of a stored ``anomaly`` (an ``Anomaly`` row) in ``locale``, rebuilt
    from its stored facts (the stored English when they do not rebuild it: see
    :func:`adsentinel.detect.sentences.localized_message`)."""
    from adsentinel.detect.sentences import localized_message

    return localized_message(
        anomaly.message, lang=language(locale), metric=anomaly.metric, actual=anomaly.actual,
        expected=anomaly.expected, detectors=anomaly.detectors, drivers=anomaly.drivers or {},
        currency=currency or "USD", entity_type=level,
        is_partial_day=bool(anomaly.is_partial_day))


def attention_mark(kind: str | None, mark: str, locale: str) -> str:
    """An account's attention mark in ``locale``: the sync's what-to-do of its ``kind``, or the
    mark as written (:func:`adsentinel.sync.error_kinds.attention_sentence`)."""
    return attention_sentence(language(locale), kind, mark)


def _ctx_locale(context) -> str:
    return context.get("locale", "en")


@pass_context
def _gettext(context, message: str) -> str:
    return context["page_gettext"](message)


@pass_context
def _next_step(context, kind: str, level: str, since: date) -> str:
    return next_step_text(kind, level, since, _ctx_locale(context))


@pass_context
def _anomaly_message(context, anomaly: Any, currency: str, level: str) -> str:
    return anomaly_message(anomaly, currency, level, _ctx_locale(context))


@pass_context
def _attention_mark(context, kind: str | None, mark: str) -> str:
    return attention_mark(kind, mark, _ctx_locale(context))


@pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return context["page_translations"].ngettext(singular, plural, n)


@pass_context
def _money_filter(context, amount: float | None, currency: str) -> str:
    return money(amount, currency, _ctx_locale(context))


@pass_context
def _metric_filter(context, value: float | None, metric: str, currency: str = "") -> str:
    return metric_value(value, metric, currency, _ctx_locale(context))


@pass_context
def _ratio(context, actual: float | None, expected: float | None) -> str:
    return ratio(actual, expected, _ctx_locale(context))


@pass_context
def _number_filter(context, value: float | None, pattern: str = "#,##0.##") -> str:
    return "–" if value is None else format_decimal(value, pattern, locale=_ctx_locale(context))


#: a date in a narrow column, unambiguous in each language (ISO in English, dd/mm/aaaa in Brazil)
_SHORT_DATES = {"en": "yyyy-MM-dd", "pt_BR": "dd/MM/yyyy"}


@pass_context
def _date_filter(context, value: date | datetime | None, form: str = "medium") -> str:
    if value is None:
        return "–"
    locale = _ctx_locale(context)
    if isinstance(value, datetime):  # stored in UTC, shown in UTC
        moment = as_utc(value)
        pattern = _SHORT_DATES.get(locale, "yyyy-MM-dd") + " HH:mm 'UTC'"
        return format_datetime(moment, pattern, tzinfo=UTC, locale=locale)
    if form == "short":
        return format_date(value, _SHORT_DATES.get(locale, "yyyy-MM-dd"), locale=locale)
    return format_date(value, form, locale=locale)


def make_templates(directory: Path) -> Jinja2Templates:
    """The dashboard's templates with gettext and the locale filters installed."""
    env = Environment(loader=FileSystemLoader(directory), autoescape=select_autoescape(),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(money=_money_filter, metric_value=_metric_filter,
                       number=_number_filter, day=_date_filter)
    env.globals.update(next_step=_next_step, ratio=_ratio, anomaly_message=_anomaly_message,
                       attention_mark=_attention_mark)
    return Jinja2Templates(env=env)


__all__ = ["DOMAIN", "LANGUAGE_COOKIE", "anomaly_message", "asked_locale", "attention_mark",
           "make_templates", "metric_value", "money", "next_step_text", "page_context",
           "page_gettext", "request_locale"]
