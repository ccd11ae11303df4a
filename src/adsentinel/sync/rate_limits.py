"""Meta's rate limits: reading the usage headers, classifying errors, deciding how long to wait.

Pure functions and small value objects, no I/O: :mod:`adsentinel.sync.meta_client` feeds them
the headers and errors of each call and sleeps for what they return.

Meta reports, on every response, how much of several budgets the caller has used:

* ``X-Business-Use-Case-Usage``: ``{"<business id>": [{"type": "ads_insights", "call_count": 28,
  "total_cputime": 25, "total_time": 25, "estimated_time_to_regain_access": 0}]}``; percentages,
  and minutes until a throttled caller may call again;
* ``X-Ad-Account-Usage``: ``{"acc_id_util_pct": 9.67, "reset_time_duration": 0}``; a percentage
  and the seconds until the account's score resets;
* ``x-fb-ads-insights-throttle``: ``{"app_id_util_pct": 0, "acc_id_util_pct": 0}``; the insights
  endpoint's own load, per app and per account;
* ``X-App-Usage``: ``{"call_count": 0, "total_cputime": 0, "total_time": 0}``.

The sync slows down before any of them reaches 100 % (:func:`pacing_delay`), and when Meta
throttles anyway (error codes 4, 17, 32, 613, 80000-80014) waits at least Meta's own estimate,
with exponential backoff and jitter (:class:`BackoffPolicy`).
"""

from __future__ import annotations

import enum
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

BUSINESS_USAGE_HEADER = "x-business-use-case-usage"
AD_ACCOUNT_USAGE_HEADER = "x-ad-account-usage"
INSIGHTS_THROTTLE_HEADER = "x-fb-ads-insights-throttle"
APP_USAGE_HEADER = "x-app-usage"

#: application / user / account request limits, and the business use case limits (80000-80014)
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
#: the token expired, was revoked, or is not a token at all
AUTH_CODES = frozenset({102, 190})
#: the token is valid but lacks a permission (ads_read) or access to this ad account
PERMISSION_CODES = frozenset({10, *range(200, 300)})
#: "you are calling a deprecated version of the Ads API": the pinned version was retired
VERSION_RETIRED_CODES = frozenset({2635})
#: "an unknown error occurred", "service temporarily unavailable"
TRANSIENT_CODES = frozenset({1, 2})

#: the longest pause between two calls while a budget is between the slowdown point and 100 %
MAX_PACING_SECONDS = 60.0


@dataclass(frozen=True)
class UsageReading:
    """The highest share used of any of Meta's budgets, and how long until access returns.

    ``percent`` is 0-100 (it can exceed 100 when Meta is already throttling);
    ``regain_seconds`` is Meta's estimate of the wait before calls are accepted again
    (0 when not throttled); ``budget`` names the budget that is the most used.
    """

    percent: float = 0.0
    regain_seconds: float = 0.0
    budget: str | None = None


def read_usage(headers: Mapping[str, str] | None) -> UsageReading:
    """The most constraining figure of every usage header in ``headers`` (names in any case).

    A header that is not valid JSON is logged and ignored: pacing is a courtesy, not a reason to
    fail a sync.
    """
    if not headers:
        return UsageReading()
    lowered = {str(name).lower(): value for name, value in headers.items()}
    percent, regain, budget = 0.0, 0.0, None

    def consider(value: object, name: str) -> None:
        nonlocal percent, budget
        number = _number(value)
        if number is not None and number > percent:
            percent, budget = number, name

    business = _json_header(lowered, BUSINESS_USAGE_HEADER)
    if isinstance(business, dict):
        for business_id, entries in business.items():
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                kind = entry.get("type", "business")
                for field in ("call_count", "total_cputime", "total_time"):
                    consider(entry.get(field), f"business use case {kind} ({business_id}) {field}")
                minutes = _number(entry.get("estimated_time_to_regain_access"))
                if minutes:
                    regain = max(regain, minutes * 60.0)
    account = _json_header(lowered, AD_ACCOUNT_USAGE_HEADER)
    if isinstance(account, dict):
        consider(account.get("acc_id_util_pct"), "ad account usage")
        reset = _number(account.get("reset_time_duration"))
        if reset and (_number(account.get("acc_id_util_pct")) or 0) >= 100:
            regain = max(regain, reset)
    insights = _json_header(lowered, INSIGHTS_THROTTLE_HEADER)
    if isinstance(insights, dict):
        consider(insights.get("app_id_util_pct"), "insights throttle (app)")
        consider(insights.get("acc_id_util_pct"), "insights throttle (account)")
    app = _json_header(lowered, APP_USAGE_HEADER)
    if isinstance(app, dict):
        for field in ("call_count", "total_cputime", "total_time"):
            consider(app.get(field), f"app usage {field}")
    return UsageReading(percent=percent, regain_seconds=regain, budget=budget)


def usage_by_budget(headers: Mapping[str, str] | None) -> dict[str, float]:
    """The share used (0-100, above 100 when throttled) of each budget the headers report, by a
    name without ids, fit for a metric label: ``business_use_case_<type>`` (the highest of its
    call count, CPU time and total time, over every business), ``ad_account``,
    ``insights_app`` / ``insights_account`` and ``app``. Unreadable headers are left out."""
    if not headers:
        return {}
    lowered = {str(name).lower(): value for name, value in headers.items()}
    found: dict[str, float] = {}

    def put(budget: str, *values: object) -> None:
        numbers = [n for n in map(_number, values) if n is not None]
        if numbers:
            found[budget] = max(found.get(budget, 0.0), *numbers)

    business = _json_header(lowered, BUSINESS_USAGE_HEADER)
    for entries in business.values() if isinstance(business, dict) else ():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                kind = _BUDGET_NAME.sub("_", str(entry.get("type") or "").lower()).strip("_")
                put(f"business_use_case_{kind[:40] or 'other'}", entry.get("call_count"),
                    entry.get("total_cputime"), entry.get("total_time"))
    account = _json_header(lowered, AD_ACCOUNT_USAGE_HEADER)
    if isinstance(account, dict):
        put("ad_account", account.get("acc_id_util_pct"))
    insights = _json_header(lowered, INSIGHTS_THROTTLE_HEADER)
    if isinstance(insights, dict):
        put("insights_app", insights.get("app_id_util_pct"))
        put("insights_account", insights.get("acc_id_util_pct"))
    app = _json_header(lowered, APP_USAGE_HEADER)
    if isinstance(app, dict):
        put("app", app.get("call_count"), app.get("total_cputime"), app.get("total_time"))
    return found


_BUDGET_NAME = re.compile(r"[^a-z0-9]+")


def _json_header(headers: Mapping[str, str], name: str) -> object:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        log.warning("ignoring the %s header, which is not JSON: %.200r", name, raw)
        return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def pacing_delay(usage: UsageReading, *, slowdown_percent: float,
                 max_seconds: float = MAX_PACING_SECONDS) -> float:
    """Seconds to pause before the next call, given the last reading.

    Nothing below ``slowdown_percent``; from there a pause growing linearly to ``max_seconds``
    at 100 %; at or above 100 % (or when Meta gave a time to regain access) at least that time.
    """
    if usage.regain_seconds > 0:
        return max(usage.regain_seconds, max_seconds if usage.percent >= 100 else 0.0)
    if usage.percent < slowdown_percent:
        return 0.0
    if usage.percent >= 100:
        return max_seconds
    share = (usage.percent - slowdown_percent) / max(100.0 - slowdown_percent, 1e-9)
    return share * max_seconds


class ErrorKind(str, enum.Enum):
    """What to do about a failed call."""

    throttled = "throttled"      # wait (Meta's estimate, backoff) and try again
    auth = "auth"                # a person must fix the token: mark the account, stop
    version_retired = "version_retired"  # a person must pin a newer Graph API version
    transient = "transient"      # try again after a short backoff
    permanent = "permanent"      # the request itself is wrong: fail the run


def classify_error(*, code: int | None, subcode: int | None = None, http_status: int | None = None,
                   is_transient: bool = False) -> ErrorKind:
    """Classify a Graph API error by its ``code`` (and HTTP status when there is no code)."""
    if code in THROTTLE_CODES:
        return ErrorKind.throttled
    if code in AUTH_CODES or code in PERMISSION_CODES:
        return ErrorKind.auth
    if code in VERSION_RETIRED_CODES:
        return ErrorKind.version_retired
    if is_transient or code in TRANSIENT_CODES:
        return ErrorKind.transient
    if code is None and (http_status is None or http_status >= 500 or http_status == 429):
        return ErrorKind.transient
    return ErrorKind.permanent


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with jitter, floored by Meta's own estimate when it gives one.

    Attempt ``n`` (0-based) waits ``min(cap, base * 2**n)`` plus up to half of that again at
    random, so that many accounts throttled at once do not all come back at the same second.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 6

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(f"need 0 < base_seconds <= cap_seconds, got {self.base_seconds} "
                             f"and {self.cap_seconds}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, attempt: int, *, at_least: float = 0.0,
              rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        exponential = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt, 0))
        jitter = (rng or random).uniform(0.0, exponential / 2)
        return max(at_least, exponential) + jitter
