"""Graph API objects → validated rows. Pure: dicts in, dataclasses out, no I/O.

Every check names the object (campaign, ad set, ad, or the ad and day of an insights row), the
field, what was found and what was expected, and raises :class:`SyncPayloadError`; the service
then writes nothing of that sync.

Leads come from the insights row's ``actions`` list: the sum of the values of the action types
the account counts as results. Meta's ``lead`` already adds up ``onsite_conversion.lead_grouped``
(instant forms) and ``offsite_conversion.fb_pixel_lead`` (the pixel), so counting one of those next
to ``lead`` would count the same leads twice; :func:`parse_result_action_types` refuses that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, overload

from adsentinel.errors import ConfigError
from adsentinel.ingest.csv_rows import InsightRow
from adsentinel.sync.errors import SyncPayloadError

#: action types that ``lead`` already includes
LEAD_COMPONENTS = frozenset({"onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead"})

CAMPAIGN_FIELDS = ("id", "name", "status", "effective_status")
ADSET_FIELDS = ("id", "name", "status", "effective_status", "campaign_id")
AD_FIELDS = ("id", "name", "status", "effective_status", "adset_id", "campaign_id")
#: ``inline_link_clicks`` are link clicks: what Ads Manager's CTR (link) and CPC use and what the
#: CSV export calls "Link clicks" (``clicks`` counts every click: likes, profile, expand...).
INSIGHT_FIELDS = ("date_start", "date_stop", "campaign_id", "campaign_name", "adset_id",
                  "adset_name", "ad_id", "ad_name", "spend", "impressions", "inline_link_clicks",
                  "reach", "frequency", "actions", "action_values")
#: what ad set and campaign level insights are read for: their own (deduplicated) reach, and
#: the attribution setting each ad set's results are counted with (e.g. 7d_click_1d_view)
PARENT_REACH_FIELDS = ("date_start", "date_stop", "adset_id", "campaign_id", "reach")
ADSET_REACH_FIELDS = (*PARENT_REACH_FIELDS, "attribution_setting")
ACCOUNT_FIELDS = ("account_id", "name", "currency", "timezone_name", "account_status")
#: the first day an insights row may hold; the last is today in the account's zone, checked
#: when the rows are stored (``upsert_ad_insight_rows``); here, today anywhere on Earth (UTC+14)
EARLIEST_DAY = date(1970, 1, 1)
_FURTHEST_AHEAD = timedelta(hours=14)
#: C0 and C1 control characters: a line break in a name would break an alert's e-mail subject
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
#: what ``accounts discover`` shows of each readable ad account
DISCOVERY_FIELDS = ("id", "account_id", "name", "currency", "timezone_name", "account_status")


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The ad account as Meta describes it."""

    platform_account_id: str
    name: str | None
    currency: str
    timezone: str
    account_status: int | None


@dataclass(frozen=True, slots=True)
class StructureRecord:
    """A campaign, ad set or ad: its Meta id, name, delivery status and parent's Meta id (and,
    for an ad, its campaign's, which places an ad set Meta did not list)."""

    level: str
    platform_id: str
    name: str | None
    status: str
    parent_platform_id: str | None
    campaign_platform_id: str | None = None


def parse_result_action_types(text: str) -> tuple[str, ...]:
    """The comma-separated action types an account counts as results, validated.

    Raises :class:`ConfigError` for an empty list or for ``lead`` next to one of its components.
    """
    types = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not types:
        raise ConfigError("result action types are empty",
                          hint="use e.g. 'lead' (the default) or 'offsite_conversion.fb_pixel_lead'")
    if "lead" in types:
        doubled = sorted(LEAD_COMPONENTS.intersection(types))
        if doubled:
            raise ConfigError(
                f"result action types {', '.join(types)!s} count leads twice: 'lead' already "
                f"includes {', '.join(doubled)}",
                hint="keep 'lead' alone, or list its components without 'lead'")
    return types


def parse_account(data: Mapping[str, Any]) -> AccountInfo:
    """The account node (``GET act_<id>?fields=...``)."""
    where = "ad account"
    _require_object(data, where)
    account_id = _identifier(data, "account_id", where, required=False) or \
        _identifier(data, "id", where).removeprefix("act_")
    currency = _text(data, "currency", where, required=True)
    if len(currency) != 3 or not currency.isalpha():
        raise _problem(where, "currency", currency, "a 3-letter ISO code such as 'USD'")
    timezone = _text(data, "timezone_name", where, required=True)
    status = data.get("account_status")
    return AccountInfo(platform_account_id=f"act_{account_id}",
                       name=_text(data, "name", where, required=False),
                       currency=currency.upper(), timezone=timezone,
                       account_status=status if isinstance(status, int) else None)


def parse_campaign(data: Mapping[str, Any]) -> StructureRecord:
    """A campaign node of ``act_<id>/campaigns``."""
    _require_object(data, "campaign")
    platform_id = _identifier(data, "id", "campaign")
    where = f"campaign {platform_id}"
    return StructureRecord("campaign", platform_id, _text(data, "name", where, required=False),
                           _status(data, where), None)


def parse_adset(data: Mapping[str, Any]) -> StructureRecord:
    """An ad set node of ``act_<id>/adsets``."""
    _require_object(data, "ad set")
    platform_id = _identifier(data, "id", "ad set")
    where = f"ad set {platform_id}"
    return StructureRecord("adset", platform_id, _text(data, "name", where, required=False),
                           _status(data, where), _identifier(data, "campaign_id", where))


def parse_ad(data: Mapping[str, Any]) -> StructureRecord:
    """An ad node of ``act_<id>/ads``."""
    _require_object(data, "ad")
    platform_id = _identifier(data, "id", "ad")
    where = f"ad {platform_id}"
    return StructureRecord("ad", platform_id, _text(data, "name", where, required=False),
                           _status(data, where), _identifier(data, "adset_id", where),
                           _identifier(data, "campaign_id", where, required=False) or None)


def parse_insight(data: Mapping[str, Any], *, result_action_types: Sequence[str]) -> InsightRow:
    """One row of ad-level insights with ``time_increment=1``, as the importer's row type (its
    ``line`` 0 until the sync numbers the rows it hands to the importer; no account columns: the
    sync knows its account).

    ``spend`` arrives as a decimal string, counts as integer strings. Missing
    ``inline_link_clicks``, ``reach`` or ``actions`` mean zero (Meta leaves out what did not
    happen); a missing ``reach`` with a ``frequency`` is recovered as ``impressions / frequency``.
    ``conversions`` and ``revenue`` are the result types' entries of ``actions`` and
    ``action_values``, ``None`` when Meta sent none of them (so that nothing stored is
    overwritten with an absence).
    """
    _require_object(data, "insights row")
    ad_id = _identifier(data, "ad_id", "insights row")
    where = f"insights row of ad {ad_id}"
    start = _day(data, "date_start", where)
    stop = _day(data, "date_stop", where)
    where = f"insights row of ad {ad_id} on {start}"
    if stop != start:
        raise _problem(where, "date_stop", stop.isoformat(),
                       f"the same day as date_start ({start}): one row per day (time_increment=1)")
    spend = _amount(data, "spend", where, required=True)
    impressions = _count(data, "impressions", where, required=True)
    clicks = _count(data, "inline_link_clicks", where, required=False)
    reach = _count(data, "reach", where, required=False)
    if "reach" not in data or data.get("reach") is None:
        frequency = _amount(data, "frequency", where, required=False)
        reach = round(impressions / frequency) if frequency else 0
    if reach > impressions:
        raise _problem(where, "reach", reach, f"at most the impressions ({impressions})")
    return InsightRow(
        line=0, day=start, account_id=None, account_name=None, currency=None,
        campaign_id=_identifier(data, "campaign_id", where),
        campaign_name=_text(data, "campaign_name", where, required=False),
        adset_id=_identifier(data, "adset_id", where),
        adset_name=_text(data, "adset_name", where, required=False),
        ad_id=ad_id,
        ad_name=_text(data, "ad_name", where, required=False),
        spend=spend, impressions=impressions, clicks=clicks, reach=reach,
        leads=leads_from_actions(data.get("actions"), result_action_types, where=where),
        conversions=_optional_total(data, "actions", result_action_types, where, whole=True),
        revenue=_optional_total(data, "action_values", result_action_types, where, whole=False),
    )


def parse_parent_reach(data: Mapping[str, Any], *,
                       level: str) -> tuple[str, date, int, str | None]:
    """(ad set or campaign id, day, reach, attribution setting) of an ad set or campaign level
    insights row: the people reached by the parent as a whole (its ads' reach overlaps, so their
    sum overstates it), and for an ad set the attribution setting its results are counted with."""
    _require_object(data, f"{level} insights row")
    platform_id = _identifier(data, f"{level}_id", f"{level} insights row")
    where = f"{level} insights row of {platform_id}"
    day = _day(data, "date_start", where)
    return (platform_id, day, _count(data, "reach", f"{where} on {day}", required=False),
            _text(data, "attribution_setting", f"{where} on {day}", required=False))


@overload
def _optional_total(data: Mapping[str, Any], field: str, result_action_types: Sequence[str],
                    where: str, *, whole: Literal[True]) -> int | None: ...
@overload
def _optional_total(data: Mapping[str, Any], field: str, result_action_types: Sequence[str],
                    where: str, *, whole: Literal[False]) -> float | None: ...
def _optional_total(data: Mapping[str, Any], field: str, result_action_types: Sequence[str],
                    where: str, *, whole: bool) -> int | float | None:
    """The result types' total in ``actions`` or ``action_values``; ``None`` when none listed."""
    entries = data.get(field)
    wanted = set(result_action_types)
    if not isinstance(entries, list) or not any(
            isinstance(e, Mapping) and e.get("action_type") in wanted for e in entries):
        return None
    total = _sum_actions(entries, wanted, where, field)
    return round(total) if whole else round(total, 2)


def leads_from_actions(actions: object, result_action_types: Iterable[str], *,
                       where: str = "insights row") -> int:
    """Sum of the ``value`` of every action whose ``action_type`` is a result type."""
    if actions is None:
        return 0
    return round(_sum_actions(actions, set(result_action_types), where, "actions"))


def _sum_actions(actions: object, wanted: set[str], where: str, name: str) -> float:
    if not isinstance(actions, list):
        raise _problem(where, name, actions, "a list of {action_type, value} objects")
    total = 0.0
    for index, action in enumerate(actions):
        field = f"{name}[{index}]"
        if not isinstance(action, Mapping) or not isinstance(action.get("action_type"), str):
            raise _problem(where, field, action, "an object with a string 'action_type'")
        if action["action_type"] not in wanted:
            continue
        total += _amount(action, "value", where, required=True,
                         field_name=f"{field}.value ({action['action_type']})")
    return total


# --- field readers ----------------------------------------------------------------------------


def _problem(where: str, field: str, value: object, expected: str) -> SyncPayloadError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return SyncPayloadError(f"Meta returned a malformed {where}: field {field!r} is {shown}, "
                            f"expected {expected}",
                            hint="nothing of this date range was written; if it persists, "
                                 "report the payload (see the log) as a Meta API change")


def _require_object(data: object, where: str) -> None:
    if not isinstance(data, Mapping):
        raise _problem(where, "data[]", data, "a JSON object")


def _identifier(data: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str:
    value = data.get(field)
    if value is None:
        if required:
            raise _problem(where, field, None, "a numeric Meta id")
        return ""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.removeprefix("act_").isdigit():
        raise _problem(where, field, value, "a numeric Meta id")
    return text


@overload
def _text(data: Mapping[str, Any], field: str, where: str, *, required: Literal[True]) -> str: ...
@overload
def _text(data: Mapping[str, Any], field: str, where: str, *, required: bool) -> str | None: ...
def _text(data: Mapping[str, Any], field: str, where: str, *, required: bool) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _problem(where, field, None, "a string")
        return None
    if not isinstance(value, str):
        raise _problem(where, field, value, "a string")
    if _CONTROL_CHARACTER.search(value):
        raise _problem(where, field, value, "one line of text without control characters")
    return value


def _status(data: Mapping[str, Any], where: str) -> str:
    """``effective_status`` (which says a paused parent stops the child) or else ``status``."""
    for field in ("effective_status", "status"):
        value = data.get(field)
        if value is not None:
            if not isinstance(value, str) or not value or len(value) > 32:
                raise _problem(where, field, value, "a status such as 'ACTIVE' or 'PAUSED'")
            return value
    raise _problem(where, "effective_status", None, "a status such as 'ACTIVE' or 'PAUSED'")


def _day(data: Mapping[str, Any], field: str, where: str) -> date:
    value = data.get(field)
    if isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            latest = (datetime.now(UTC) + _FURTHEST_AHEAD).date()
            if EARLIEST_DAY <= day <= latest:
                return day
            raise _problem(where, field, value, f"a day from {EARLIEST_DAY} to today")
    raise _problem(where, field, value, "a date as YYYY-MM-DD")


def _amount(data: Mapping[str, Any], field: str, where: str, *, required: bool,
            field_name: str | None = None) -> float:
    value = data.get(field)
    name = field_name or field
    if value is None:
        if required:
            raise _problem(where, name, None, "a non-negative number")
        return 0.0
    if isinstance(value, bool):
        raise _problem(where, name, value, "a non-negative number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _problem(where, name, value, "a non-negative number") from None
    if not math.isfinite(number) or number < 0:
        raise _problem(where, name, value, "a non-negative number")
    return number


def _count(data: Mapping[str, Any], field: str, where: str, *, required: bool) -> int:
    value = data.get(field)
    if value is None:
        if required:
            raise _problem(where, field, None, "a non-negative whole number")
        return 0
    if isinstance(value, bool):
        raise _problem(where, field, value, "a non-negative whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise _problem(where, field, value, "a non-negative whole number")
    if number < 0:
        raise _problem(where, field, value, "a non-negative whole number")
    return number
