"""The detector's sentence of an anomaly, rebuilt in the reader's language from what is stored.

Detection stores one English sentence per anomaly (``anomalies.message``, written by
:func:`adsentinel.detect.anomaly_detector.metric_message`, the rules' notes of
:mod:`adsentinel.detect.metric_rules` and :mod:`adsentinel.detect.hierarchy_rules`, and
:func:`adsentinel.detect.forest_message.combination_sentence`). A reader of another language
gets the same sentence rebuilt from the anomaly's structured facts: its metric, actual and
expected values, its detector (pooled days: ``nb_rate_3d``), and its ``drivers`` (the counts the
test was made on, the rule that capped or raised it in ``drivers["rule"]`` with the parent's level
and spend ratio its note names, the day's share on a partial day, the ads that explain a parent,
the forest's moves).

:func:`anomaly_sentence` writes it in English (byte for byte the stored message: a test holds it
on real detector output) or, given a :class:`~adsentinel.i18n.Language`, in that language with
its number and money formats. :func:`localized_message` is what readers call: the stored
message when the reader is English, or when the facts do not rebuild it exactly (an anomaly
stored before these facts were, or by a rule this module does not know): then the reader gets
the exact English rather than a sentence that says something else.

Pure: values in, text out. The templates are in the ``messages`` catalogs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from adsentinel.detect import metric_rules as rules
from adsentinel.detect.anomaly_detector import _ratio_text, format_metric, format_money
from adsentinel.detect.forest_message import change_text
from adsentinel.detect.statistical import pooled_days
from adsentinel.i18n import DEFAULT_LOCALE, N_, Language

MULTIVARIATE = "multivariate"

#: what a rule's note says, by rule name (``drivers["rule"]``): the notes
#: :mod:`adsentinel.detect.metric_rules` writes; a mapping by the budget holder's level
#: (``drivers["parent_level"]``) where the note names it.
RULE_NOTES: dict[str, Any] = {
    "ad_set_carries_spend": rules.HOLDER_CARRIES_SPEND_NOTE,
    "holder_budget_edit": rules.HOLDER_BUDGET_EDIT_NOTE,
    "sibling_budget_shift": rules.SIBLING_BUDGET_SHIFT_NOTE,
    "spend_level_held": rules.SPEND_LEVEL_HELD_NOTE,
    "delivery_budget_cut": rules.DELIVERY_BUDGET_CUT_NOTE,
    "leads_follow_delivery": rules.LEADS_FOLLOW_DELIVERY_NOTE,
    "tracking_break_floor": rules.TRACKING_BREAK_NOTE,
    "harmless_direction": "",
    "frequency_below_ideal": "",
}

_LABELS = {
    "spend": N_("Spend"), "impressions": N_("Impressions"), "leads": N_("Leads"),
    "ctr": N_("CTR"), "conversion_rate": N_("Conversion rate"), "cpc": N_("CPC"),
    "cpm": N_("CPM"), "cpl": N_("CPL"), "frequency": N_("Frequency"),
}  # fmt: skip
_HEAD = N_("%(metric)s %(actual)s vs %(expected)s expected (%(ratio)s)")
_CPL_UNDEFINED = N_("CPL undefined: 0 leads on %(spend)s of spend (CPL %(expected)s expected, "
                    "~%(leads)s leads)")
_DETAILS = {
    "cpl": N_("%(leads)s leads on %(spend)s of spend"),
    "cpc": N_("%(clicks)s clicks on %(spend)s of spend"),
    "cpm": N_("%(impressions)s impressions on %(spend)s"),
    "ctr": N_("%(clicks)s clicks on %(impressions)s impressions"),
    "conversion_rate": N_("%(leads)s leads from %(clicks)s clicks"),
    "frequency": N_("ideal is at most %(ideal)s"),
}
_TWO_DAYS = N_("(yesterday and today together)")
_DAYS = N_("(the last %(days)s days together)")
_PARTIAL = N_("(partial day, %(share)s of a day's delivery expected by now)")
#: a parent's move explained by one of its ads, or by several (or none, in English's plural)
_EXPLAINED_ONE = N_("explained by %(num)d of its ad, judged there")
_EXPLAINED = N_("explained by %(num)d of its ads, judged there")
_MIX = N_("each of its ads is as usual: the mix of its ads changed (ads starting or stopping, "
          "budget moving between them)")
#: the forest's sentence, by the entity's level: several metrics, or one
_TOGETHER = {
    "campaign": N_("%(moves)s together, unusual for this campaign"),
    "adset": N_("%(moves)s together, unusual for this ad set"),
    "ad": N_("%(moves)s together, unusual for this ad"),
}
_ALONE = {
    "campaign": N_("%(moves)s, unusual for this campaign"),
    "adset": N_("%(moves)s, unusual for this ad set"),
    "ad": N_("%(moves)s, unusual for this ad"),
}
_AND = N_("%(first)s and %(last)s")
_NO_LEADS = N_("no leads")
_UNCHANGED = N_("about unchanged")


class _EnglishFormats:
    """The detector's own formats (``R$ 1,234.50``, ``1.23%``, ``3.5x``): what it stored."""

    locale = DEFAULT_LOCALE

    def text(self, message: str, /, **variables: object) -> str:
        return message % variables if variables else message

    def money(self, value: float, currency: str) -> str:
        return format_money(value, currency)

    def metric(self, metric: str, value: float, currency: str) -> str:
        return format_metric(metric, value, currency)

    def ratio(self, actual: float, expected: float) -> str:
        return _ratio_text(actual, expected)

    def count(self, value: float) -> str:
        return f"{int(value):,}"

    def whole(self, value: float) -> str:
        return f"{value:.0f}"

    def tenths(self, value: float) -> str:
        return f"{value:.1f}"

    def plain(self, value: float) -> str:
        return f"{value:g}"

    def share(self, fraction: float) -> str:
        return f"{100 * fraction:.0f}%"

    def change(self, change: float) -> str:
        return change_text(change)


class _LanguageFormats(_EnglishFormats):
    """The words and the number and money formats of a :class:`Language`."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.locale = lang.locale

    def text(self, message: str, /, **variables: object) -> str:
        return self.lang.gettext(message, **variables)

    def money(self, value: float, currency: str) -> str:
        return self.lang.money(value, currency)

    def metric(self, metric: str, value: float, currency: str) -> str:
        return self.lang.metric_value(metric, value, currency)

    def ratio(self, actual: float, expected: float) -> str:
        return self.lang.ratio(actual, expected)

    def count(self, value: float) -> str:
        return self.lang.number(int(value), decimals=0)

    def whole(self, value: float) -> str:
        return self.lang.number(value, decimals=0) if math.isfinite(value) else "?"

    def tenths(self, value: float) -> str:
        return self.lang.number(value, decimals=1)

    def plain(self, value: float) -> str:
        return self.lang.number(value, decimals=0 if float(value).is_integer() else 2)

    def share(self, fraction: float) -> str:
        return self.lang.percent(fraction, decimals=0)

    def change(self, change: float) -> str:
        if change >= 1.0:
            return "x" + self.lang.number(1.0 + change, decimals=1)
        percent = round(100 * change)
        return self.text(_UNCHANGED) if percent == 0 else f"{percent:+d} %"


def anomaly_sentence(
    *, metric: str, actual: float, expected: float, detectors: str | Sequence[str],
    drivers: Mapping[str, Any], currency: str, entity_type: str, is_partial_day: bool = False,
    lang: Language | None = None,
) -> str:
    """The detector's sentence of one anomaly, in ``lang`` (English, as detection writes it,
    when omitted or English).

    Parameters are the anomaly's stored fields: ``detectors`` its detector names (a list, or
    the stored ``"a+b"`` / ``"a,b"`` text), ``entity_type`` its entity's level (``campaign``,
    ``adset``, ``ad``), ``currency`` its account's ISO code. Raises ``KeyError`` or
    ``ValueError`` when ``drivers`` lacks a fact the sentence needs (older rows), or names a
    rule or level this module has no words for.
    """
    formats = (_LanguageFormats(lang) if lang is not None and lang.locale != DEFAULT_LOCALE
               else _EnglishFormats())
    if metric == MULTIVARIATE:
        return _combination(drivers, entity_type, formats)
    return _metric_sentence(metric, actual, expected, _detector_names(detectors), drivers,
                            currency, is_partial_day, formats)


def localized_message(message: str, *, lang: Language | None, **facts: Any) -> str:
    """The stored ``message`` of an anomaly as ``lang``'s reader reads it.

    ``facts`` are :func:`anomaly_sentence`'s keyword arguments. The stored message itself for an
    English reader, and whenever the facts do not rebuild that message exactly in English
    (anomalies stored before their drivers held these facts, a changed rule): the reader then
    gets detection's exact words rather than a translation of something else.
    """
    if lang is None or lang.locale == DEFAULT_LOCALE or not message:
        return message
    try:
        if anomaly_sentence(**facts) != message:
            return message
        return anomaly_sentence(**facts, lang=lang)
    except (KeyError, ValueError, TypeError):
        return message


def _detector_names(detectors: str | Sequence[str]) -> list[str]:
    if isinstance(detectors, str):
        return [name for part in detectors.split("+") for name in part.split(",") if name]
    return list(detectors)


def _metric_sentence(metric: str, actual: float, expected: float, detectors: list[str],
                     drivers: Mapping[str, Any], currency: str, partial: bool,
                     f: _EnglishFormats) -> str:
    counts = {column: float(drivers.get(f"observed_{column}", drivers[column]))
              for column in ("spend", "impressions", "clicks", "leads")}
    leads, spend = int(counts["leads"]), counts["spend"]
    if metric == "cpl" and leads == 0:
        head = f.text(_CPL_UNDEFINED, spend=f.money(spend, currency),
                      expected=f.money(expected, currency),
                      leads=f.whole(float(drivers.get("expected_leads", math.nan))))
    else:
        label = _LABELS.get(metric)
        head = f.text(_HEAD, metric=f.text(label) if label else metric,
                      actual=f.metric(metric, actual, currency),
                      expected=f.metric(metric, expected, currency),
                      ratio=f.ratio(actual, expected))
        detail = _DETAILS.get(metric)
        if detail:
            ideal = drivers["frequency_ideal"] if metric == "frequency" else 0.0
            head += ": " + f.text(detail, leads=f.count(leads), spend=f.money(spend, currency),
                                  clicks=f.count(counts["clicks"]),
                                  impressions=f.count(counts["impressions"]),
                                  ideal=f.plain(float(ideal)))
    days = max((pooled_days(name) for name in detectors), default=1)
    if days == 2:
        head += " " + f.text(_TWO_DAYS)
    elif days > 2:
        head += " " + f.text(_DAYS, days=days)
    note = _rule_note(drivers, actual, expected, f)
    if note:
        head += "; " + note
    if partial:
        head += " " + f.text(_PARTIAL, share=f.share(float(drivers["day_fraction"])))
    if "explained_by_ads" in drivers:
        ads = int(drivers["explained_by_ads"])
        head += "; " + f.text(_EXPLAINED_ONE if ads == 1 else _EXPLAINED, num=ads)
    if drivers.get("mix_changed"):
        head += "; " + f.text(_MIX)
    return head


def _rule_note(drivers: Mapping[str, Any], actual: float, expected: float,
               f: _EnglishFormats) -> str:
    rule = drivers.get("rule")
    if not rule:
        return ""
    if rule == "ads_hold_no_budget":
        ratio = float(drivers["parent_spend_ratio"])
        return (f.text(rules.AD_SET_ROSE_NOTE, ratio=f.tenths(ratio)) if ratio > 1.0
                else f.text(rules.AD_SET_AS_USUAL_NOTE))
    if rule == "account_budget_habit":
        count, days = int(drivers["budget_steps"]), int(drivers["budget_days"])
        return f.text(rules.budget_habit_template(count), count=count, days=days)
    if rule == "spend_budget_change":
        return f.text(rules.BUDGET_CHANGE_NOTE if actual <= rules.BUDGET_CHANGE_BAND[1] * expected
                      else rules.BUDGET_TYPO_NOTE)
    template = RULE_NOTES[rule]
    if isinstance(template, Mapping):
        template = template[drivers["parent_level"]]
        return f.text(template, ratio=f.tenths(float(drivers.get("parent_spend_ratio", 1.0))))
    return f.text(template) if template else ""


def _combination(drivers: Mapping[str, Any], level: str, f: _EnglishFormats) -> str:
    moves: Mapping[str, float] = drivers["moves"]
    parts: list[str] = []
    for metric, change in moves.items():
        if drivers.get("no_leads") and metric in ("cpl", "conversion_rate"):
            no_leads = f.text(_NO_LEADS)
            if no_leads not in parts:
                parts.append(no_leads)
            continue
        label = _LABELS.get(metric)
        parts.append(f"{f.text(label) if label else metric} {f.change(float(change))}")
    if not parts:
        raise ValueError("the forest's anomaly has no moves to tell")
    listed = parts[0]
    if len(parts) > 1:
        listed = f.text(_AND, first=", ".join(parts[:-1]), last=parts[-1])
    return f.text((_TOGETHER if len(parts) > 1 else _ALONE)[level], moves=listed)
