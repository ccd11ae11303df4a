"""Calls to the Meta Marketing API for one ad account, through the official ``facebook-business``
SDK: paging to the end, asynchronous report jobs for large pulls, pacing and retries.

Each client owns its own ``FacebookSession`` and ``FacebookAdsApi`` instance (never the SDK's
process-wide default), so two accounts never share a token, and its own rate-limit state, so one
account being throttled does not slow another.

Nothing here touches the database; waiting goes through an injected ``sleep`` and ``clock`` so
that tests run instantly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import requests
from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.adsinsights import AdsInsights
from facebook_business.adobjects.campaign import Campaign
from facebook_business.adobjects.objectparser import ObjectParser
from facebook_business.api import Cursor, FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookBadObjectError, FacebookRequestError
from facebook_business.session import FacebookSession

from adsentinel.sync.errors import (
    MetaApiError,
    MetaAuthError,
    MetaJobsTooSlowError,
    MetaThrottledError,
    SyncPayloadError,
    scrub_secrets,
)
from adsentinel.sync.payloads import (
    ACCOUNT_FIELDS,
    AD_FIELDS,
    ADSET_FIELDS,
    CAMPAIGN_FIELDS,
    DISCOVERY_FIELDS,
    INSIGHT_FIELDS,
)
from adsentinel.sync.rate_limits import (
    BackoffPolicy,
    ErrorKind,
    UsageReading,
    classify_error,
    pacing_delay,
    read_usage,
    usage_by_budget,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, int], None]
#: ("IN", campaign ids) or ("NOT_IN", campaign ids): a report job of some campaigns only
CampaignFilter = tuple[str, tuple[str, ...]]

JOB_COMPLETED = "Job Completed"
#: Edges are read as the plain dicts Meta sent: building an SDK object per row (type-checking
#: every field) then exporting it back cost more than half of a large sync's time.
_AS_RECEIVED = ObjectParser(custom_parse_method=lambda data, _api: data)
JOB_FAILED = ("Job Failed", "Job Skipped")
JOB_TIMED_OUT = "timed out"
#: the longest pause between two polls of a report job: each poll counts against Meta's rate
#: limits, and Meta asks for polling with exponential backoff
MAX_POLL_PAUSE_SECONDS = 60.0
_END = object()
#: Every effective status an ad, ad set or campaign can have. Insights leave out deleted and
#: archived objects unless the request filters on their effective status explicitly (Marketing
#: API reference, Insights API, "Deleted and archived objects"); asking for all of them keeps an
#: ad's history when it is deleted or archived.
ALL_EFFECTIVE_STATUSES = ("ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "PENDING_REVIEW",
                          "DISAPPROVED", "PREAPPROVED", "PENDING_BILLING_INFO",
                          "CAMPAIGN_PAUSED", "ADSET_PAUSED", "IN_PROCESS", "WITH_ISSUES")
#: (code, subcode) of "too much data for a synchronous request, use an async job"
_ASK_FOR_ASYNC = frozenset({(100, 1504018), (2, 1504038)})


class _ScrubTokensFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string (and so the token) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token" in message or "appsecret_proof" in message:
            record.msg, record.args = scrub_secrets(message), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubTokensFilter())


@dataclass(frozen=True)
class ClientOptions:
    """How patient and how polite a client is.

    ``async_threshold_rows``: an insights pull expected to return at least this many ad-day rows
    runs as an asynchronous report job (Meta times out large synchronous requests).
    ``max_throttle_wait_seconds``: once Meta's throttling would make this run wait longer in
    total, it stops (:class:`MetaThrottledError`) and the next scheduled run picks up.
    ``connect_timeout`` / ``read_timeout``: seconds before a silent connection is given up and
    the call retried (the SDK's default is to wait forever).
    ``app_secret``: when given, every call carries ``appsecret_proof`` (HMAC-SHA256 of the token).
    ``poll_timeout_seconds``: how long one asynchronous report job is waited for before it is
    taken as failed and split; Meta's jobs can take up to an hour when it is busy, so an hour.
    ``job_wait_allowance_seconds``: how long this run waits for report jobs in total (``None``:
    no limit beyond each job's); past it the run stops (:class:`MetaJobsTooSlowError`) keeping
    the ranges stored, so that a scheduled run ends within its time limit.
    """

    slowdown_percent: float = 75.0
    poll_timeout_seconds: float = 3600.0
    job_wait_allowance_seconds: float | None = None
    max_throttle_wait_seconds: float = 900.0
    async_threshold_rows: int = 2_000
    page_limit: int = 500
    async_job_attempts: int = 2
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    graph_url: str = FacebookSession.GRAPH
    api_version: str = FacebookAdsApi.API_VERSION
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    app_secret: str | None = field(default=None, repr=False)


@dataclass
class CallStats:
    """What a client did: calls made, retries, throttling, seconds spent waiting."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    async_jobs: int = 0
    split_jobs: int = 0
    highest_usage_percent: float = 0.0
    #: the highest share of each rate-limit budget seen (see ``rate_limits.usage_by_budget``)
    usage_by_budget: dict[str, float] = field(default_factory=dict)


def _raise_on_error_page(response: requests.Response, *_args, **_kwargs) -> None:
    """A 5xx answer that is not JSON (a proxy's or load balancer's error page) is Meta having
    trouble: raise it as a network-level error, retried, rather than let the SDK misread it as a
    malformed payload."""
    if response.status_code >= 500 and "json" not in response.headers.get("Content-Type", "") \
            and not response.text.lstrip().startswith("{"):
        raise requests.HTTPError(f"HTTP {response.status_code} with a non-JSON body from "
                                 f"{response.url.split('?', 1)[0]}", response=response)


class _MeteredApi(FacebookAdsApi):
    """The SDK's API object, pacing each call on the last usage headers and recording them."""

    def __init__(self, session: FacebookSession, api_version: str, *,
                 before_call: Callable[[], None],
                 on_headers: Callable[[Mapping[str, str]], None]) -> None:
        super().__init__(session, api_version)
        self._before_call = before_call
        self._on_headers = on_headers

    def call(self, method, path, params=None, headers=None, files=None, url_override=None,
             api_version=None) -> FacebookResponse:
        self._before_call()
        try:
            response = super().call(method, path, params=params, headers=headers, files=files,
                                    url_override=url_override, api_version=api_version)
        except FacebookRequestError as exc:
            self._on_headers(exc.http_headers() or {})
            raise
        self._on_headers(response.headers())
        return response


class MetaAccountClient:
    """Reads one ad account: its description, campaigns, ad sets, ads and daily ad insights.

    Every method returns plain dicts (the SDK objects' ``export_all_data()``); validating them is
    :mod:`adsentinel.sync.payloads`' job.
    """

    def __init__(self, platform_account_id: str, access_token: str, *,
                 options: ClientOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 graph_url: str | None = None,
                 on_progress: Progress | None = None) -> None:
        self.platform_account_id = platform_account_id
        self.options = options or ClientOptions()
        self.stats = CallStats()
        self._token = access_token
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_progress = on_progress
        self._usage = UsageReading()
        self._throttle_waited = 0.0
        self._job_waited = 0.0
        options = self.options
        session = FacebookSession(access_token=access_token, app_secret=options.app_secret,
                                  timeout=(options.connect_timeout, options.read_timeout))
        session.requests.hooks["response"].append(_raise_on_error_page)
        session.GRAPH = (graph_url or options.graph_url).rstrip("/")
        self._secrets = [access_token, options.app_secret,
                         getattr(session, "appsecret_proof", None)]
        self._api = _MeteredApi(session, options.api_version, before_call=self._pace,
                                on_headers=self._record_usage)
        self._account = AdAccount(fbid=platform_account_id, api=self._api)

    # --- what the sync reads ------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        """The ad account node: name, currency, timezone, status."""
        node = self._retrying("the ad account", lambda: self._account.api_get(
            fields=list(ACCOUNT_FIELDS)))
        return node.export_all_data()

    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign of the account, all pages."""
        return self._all_pages("campaigns", self._edge(self.platform_account_id, "campaigns",
                                                       Campaign, CAMPAIGN_FIELDS, {}))

    def adsets(self) -> list[dict[str, Any]]:
        """Every ad set of the account, all pages."""
        return self._all_pages("ad sets", self._edge(self.platform_account_id, "adsets",
                                                     AdSet, ADSET_FIELDS, {}))

    def ads(self) -> list[dict[str, Any]]:
        """Every ad of the account, all pages."""
        return self._all_pages("ads", self._edge(self.platform_account_id, "ads", Ad,
                                                 AD_FIELDS, {}))

    def readable_ad_accounts(self, business_id: str | None = None) -> list[dict[str, Any]]:
        """The ad accounts this token can read: ``me/adaccounts``, or a business's owned and
        client ad accounts (each listed once)."""
        edges = ([(business_id, "owned_ad_accounts"), (business_id, "client_ad_accounts")]
                 if business_id else [("me", "adaccounts")])
        found: dict[str, dict[str, Any]] = {}
        for node, edge in edges:
            for item in self._all_pages(f"{node}/{edge}", self._edge(
                    node, edge, AdAccount, DISCOVERY_FIELDS, {})):
                found.setdefault(str(item.get("id")), item)
        return list(found.values())

    def insights(self, since: date, until: date, *, expected_rows: int = 0,
                 convert: Callable[[dict[str, Any]], T] | None = None, level: str = "ad",
                 fields: tuple[str, ...] = INSIGHT_FIELDS,
                 campaign_ids: Sequence[str] = ()) -> list[T]:
        """Daily insights at ``level`` (ad, adset or campaign), one row per object and day, from
        ``since`` to ``until`` inclusive, deleted and archived objects included, attributed as
        Ads Manager shows them (``use_unified_attribution_setting``).

        Runs as asynchronous report jobs when ``expected_rows`` reaches the threshold, or when
        Meta answers a synchronous request with "reduce the amount of data"; a job that fails or
        does not finish is split by date range, then a single day by campaign (halves of
        ``campaign_ids``, and one job for every campaign not listed there), and retried.
        ``convert`` is applied to each row as its page arrives, so only the converted rows are
        kept.
        """
        if expected_rows < self.options.async_threshold_rows:
            try:
                return self._all_pages(f"{level} insights", self._edge(
                    self.platform_account_id, "insights", AdsInsights, fields,
                    insight_params(level, since, until)), convert)
            except MetaApiError as exc:
                if not _asks_for_less_data(exc):
                    raise
                log.info("%s: Meta asks for a smaller request; running an asynchronous "
                         "report job instead", self.platform_account_id)
        return self._insights_by_jobs(level, fields, since, until, convert,
                                      tuple(campaign_ids), None)

    # --- asynchronous report jobs -------------------------------------------------------------

    def _insights_by_jobs(self, level: str, fields: tuple[str, ...], since: date, until: date,
                          convert: Callable[[dict[str, Any]], T] | None,
                          campaign_ids: tuple[str, ...], only: CampaignFilter | None) -> list[T]:
        """One report job for the range (of the campaigns ``only`` keeps); when it fails or
        never finishes, the two halves of the range each get their own job, down to single
        days; a single day is then split by campaign, down to single campaigns, which are
        tried ``async_job_attempts`` times."""
        parts = _campaign_parts(campaign_ids, only)
        last_resort = since == until and not parts
        attempts = self.options.async_job_attempts if last_resort else 1
        for attempt in range(1, attempts + 1):
            job_id, status = self._run_job(level, fields, since, until, only)
            if status == JOB_COMPLETED:
                return self._all_pages(f"{level} insights", self._edge(
                    job_id, "insights", AdsInsights, fields, {}), convert)
            log.warning("%s: insights report job %s for %s..%s%s ended with %r (attempt %d "
                        "of %d)", self.platform_account_id, job_id, since, until,
                        _described(only), status, attempt, attempts)
        if last_resort:
            raise MetaApiError(
                f"Meta's insights report jobs for {self.platform_account_id} on {since}"
                f"{_described(only)} failed {attempts} times (last status {status!r})",
                hint="Meta had trouble building the report (if its jobs only run long, raise "
                     "ADSENTINEL_SYNC_ASYNC_POLL_TIMEOUT); the next sync tries again")
        self.stats.split_jobs += 1
        if since != until:
            middle = since + (until - since) / 2
            log.info("%s: splitting the insights of %s..%s into %s..%s and %s..%s",
                     self.platform_account_id, since, until, since, middle,
                     middle + timedelta(days=1), until)
            return (self._insights_by_jobs(level, fields, since, middle, convert, campaign_ids,
                                           only)
                    + self._insights_by_jobs(level, fields, middle + timedelta(days=1), until,
                                             convert, campaign_ids, only))
        log.info("%s: splitting the insights of %s%s by campaign into %d jobs",
                 self.platform_account_id, since, _described(only), len(parts))
        return [row for part in parts for row in self._insights_by_jobs(
            level, fields, since, until, convert, campaign_ids, part)]

    def _run_job(self, level: str, fields: tuple[str, ...], since: date, until: date,
                 only: CampaignFilter | None = None) -> tuple[str, str]:
        """Start a report job and wait for it: its id and how it ended."""
        params = insight_params(level, since, until, only)
        job = self._retrying("an insights report job", lambda: self._account.get_insights(
            fields=list(fields), params=dict(params), is_async=True))
        if not job.get_id():
            raise SyncPayloadError(f"Meta's answer to an insights report job request for "
                                   f"{self.platform_account_id} has no report_run_id")
        self.stats.async_jobs += 1
        return job.get_id(), self._wait_for_job(job)

    def _wait_for_job(self, job: AdReportRun) -> str:
        """Poll the job until it completes or fails, pausing 1 s, 2 s, 4 s... up to
        ``MAX_POLL_PAUSE_SECONDS``; ``JOB_TIMED_OUT`` after the poll timeout. Raises
        :class:`MetaJobsTooSlowError` when the run's allowance for jobs runs out first."""
        started = self._clock()
        allowance = self.options.job_wait_allowance_seconds
        left = None if allowance is None else allowance - self._job_waited
        limit = self.options.poll_timeout_seconds if left is None else \
            min(self.options.poll_timeout_seconds, left)
        try:
            return self._poll_until(job, started + limit, limit,
                                    stops_run=limit < self.options.poll_timeout_seconds)
        finally:
            self._job_waited += self._clock() - started

    def _poll_until(self, job: AdReportRun, deadline: float, limit: float, *,
                    stops_run: bool) -> str:
        """Poll until the job ends or ``deadline``; past it, ``JOB_TIMED_OUT``, or
        :class:`MetaJobsTooSlowError` when ``stops_run`` (the run's allowance is spent)."""
        pause = 1.0
        while True:
            self._retrying("the insights report job's status", lambda: job.api_get(fields=[
                AdReportRun.Field.async_status, AdReportRun.Field.async_percent_completion]))
            status = job.get(AdReportRun.Field.async_status)
            percent = job.get(AdReportRun.Field.async_percent_completion)
            if not isinstance(status, str):
                raise SyncPayloadError(
                    f"Meta returned a malformed insights report job {job.get_id()}: field "
                    f"'async_status' is {status!r}, expected a status such as 'Job Running'")
            if status == JOB_COMPLETED or status in JOB_FAILED:
                return status
            self._progress("insights report job", int(percent or 0))
            if self._clock() + pause > deadline:
                log.warning("%s: insights report job %s was still %r at %s%% after %.0f s",
                            self.platform_account_id, job.get_id(), status, percent, limit)
                if stops_run:
                    raise MetaJobsTooSlowError(
                        f"Meta's insights report jobs for {self.platform_account_id} were "
                        f"waited for {self.options.job_wait_allowance_seconds:.0f} s in this "
                        f"sync, its whole allowance (job {job.get_id()} still {status!r} at "
                        f"{percent or 0}%)",
                        hint="the date ranges already stored stay; the next sync asks again "
                             "(Meta's jobs can take up to an hour when it is busy)")
                return JOB_TIMED_OUT
            self._wait(pause)
            pause = min(pause * 2, MAX_POLL_PAUSE_SECONDS)

    # --- paging and retries -------------------------------------------------------------------

    def _edge(self, node_id: str, endpoint: str, target_class: type, fields: tuple[str, ...],
              params: dict[str, Any]) -> Cursor:
        """The SDK's cursor over ``node_id/endpoint`` (nothing read yet)."""
        return Cursor(target_objects_class=target_class, fields=list(fields),
                      params={**params, "limit": self.options.page_limit},
                      include_summary=False, api=self._api, node_id=node_id,
                      endpoint=endpoint, object_parser=_AS_RECEIVED)

    def _all_pages(self, what: str, cursor: Cursor,
                   convert: Callable[[dict[str, Any]], T] | None = None) -> list[Any]:
        """Every object of an edge (``convert``-ed), following the paging cursors to the end.

        A page that fails is asked again (the SDK's cursor only moves on after a success).
        """
        items: list[Any] = []
        empty_pages = 0
        while True:
            item: Any = self._retrying(what, lambda: next(cursor, _END))  # an SDK object
            if item is _END:
                # The SDK's cursor also stops at an empty page that still has a next cursor;
                # ask for the following page then (its private flag is the only way to tell).
                if getattr(cursor, "_finished_iteration", True) or empty_pages >= 20:
                    return items
                empty_pages += 1
                continue
            empty_pages = 0
            items.append(item if convert is None else convert(item))
            if len(items) % self.options.page_limit == 0:
                self._progress(what, len(items))

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried on throttling and transient failures; errors come out scrubbed."""
        attempt = 0
        while True:
            try:
                return call()
            except FacebookRequestError as exc:
                wait = self._wait_after_error(what, exc, attempt)
            except requests.RequestException as exc:
                wait = self._wait_after_network_error(what, exc, attempt)
            except FacebookBadObjectError as exc:  # an empty or cut answer: ask again
                wait = self._wait_after_bad_object(what, exc, attempt)
            except (TypeError, AttributeError, KeyError) as exc:
                raise SyncPayloadError(
                    f"Meta's response for {what} of {self.platform_account_id} is not a JSON "
                    f"object of the expected shape ({self._scrub(str(exc))})",
                    hint="nothing of this date range was written; the next sync tries "
                         "again") from None
            attempt += 1
            self.stats.retries += 1
            self._usage = UsageReading()  # this wait already covers what the headers said
            self._wait(wait)

    def _wait_after_bad_object(self, what: str, exc: FacebookBadObjectError,
                               attempt: int) -> float:
        if attempt + 1 >= self.options.backoff.max_attempts:
            raise SyncPayloadError(
                f"Meta's response for {what} of {self.platform_account_id} is not a JSON "
                f"object of the expected shape ({self._scrub(str(exc))}), "
                f"{attempt + 1} times in a row",
                hint="nothing of this date range was written; the next sync tries "
                     "again") from None
        wait = self.options.backoff.delay(attempt, rng=self._rng)
        log.warning("%s: Meta's answer for %s was not the object expected; retrying in %.0f s",
                    self.platform_account_id, what, wait)
        return wait

    def _wait_after_error(self, what: str, exc: FacebookRequestError, attempt: int) -> float:
        code, subcode = exc.api_error_code(), exc.api_error_subcode()
        kind = classify_error(code=code, subcode=subcode, http_status=exc.http_status(),
                              is_transient=bool(exc.api_transient_error()))
        message = self._scrub(exc.api_error_message() or exc.get_message() or "no message")
        described = (f"Meta refused reading {what} of {self.platform_account_id}: {message} "
                     f"(code {code}" + (f", subcode {subcode}" if subcode else "") + ")")
        if kind is ErrorKind.auth or _is_appsecret_problem(code, message):
            raise MetaAuthError(described, code=code, subcode=subcode,
                                hint=_auth_hint(code, message)) from None
        if kind is ErrorKind.version_retired:
            raise MetaAuthError(described, code=code, subcode=subcode,
                                hint="set ADSENTINEL_META_API_VERSION to a version Meta still "
                                     "serves (the error names it), then run `adsentinel "
                                     "accounts enable`") from None
        if kind is ErrorKind.permanent or _asks_for_less_data_code(code, subcode, message):
            raise MetaApiError(described, code=code, subcode=subcode) from None
        if kind is ErrorKind.throttled:
            self.stats.throttled += 1
            usage = read_usage(exc.http_headers())
            wait = self.options.backoff.delay(attempt, at_least=usage.regain_seconds,
                                              rng=self._rng)
            if self._throttle_waited + wait > self.options.max_throttle_wait_seconds:
                raise MetaThrottledError(
                    f"{described}; Meta asks to wait {wait:.0f} s more, beyond this run's "
                    f"{self.options.max_throttle_wait_seconds:.0f} s allowance",
                    code=code, subcode=subcode,
                    hint="the date ranges already stored stay; the next scheduled sync resumes"
                ) from None
            self._throttle_waited += wait
            log.warning("%s; throttled, waiting %.0f s (Meta's estimate %.0f s)", described,
                        wait, usage.regain_seconds)
            return wait
        if attempt + 1 >= self.options.backoff.max_attempts:
            raise MetaApiError(f"{described}; gave up after {attempt + 1} attempts",
                               code=code, subcode=subcode,
                               hint="Meta is having trouble; the next sync tries again") from None
        wait = self.options.backoff.delay(attempt, rng=self._rng)
        log.warning("%s; retrying in %.0f s (attempt %d of %d)", described, wait, attempt + 1,
                    self.options.backoff.max_attempts)
        return wait

    def _wait_after_network_error(self, what: str, exc: requests.RequestException,
                                  attempt: int) -> float:
        described = (f"reading {what} of {self.platform_account_id} failed: "
                     f"{type(exc).__name__}: {self._scrub(str(exc))}")
        if attempt + 1 >= self.options.backoff.max_attempts:
            raise MetaApiError(f"{described}; gave up after {attempt + 1} attempts",
                               hint="check the network path to graph.facebook.com") from None
        wait = self.options.backoff.delay(attempt, rng=self._rng)
        log.warning("%s; retrying in %.0f s (attempt %d of %d)", described, wait, attempt + 1,
                    self.options.backoff.max_attempts)
        return wait

    # --- pacing -------------------------------------------------------------------------------

    def _record_usage(self, headers: Mapping[str, str]) -> None:
        self._usage = read_usage(headers)
        self.stats.highest_usage_percent = max(self.stats.highest_usage_percent,
                                               self._usage.percent)
        highest = self.stats.usage_by_budget
        for budget, percent in usage_by_budget(headers).items():
            highest[budget] = max(highest.get(budget, 0.0), percent)

    def _pace(self) -> None:
        """Before each call: pause if the last response said a budget is nearly used."""
        self.stats.calls += 1
        delay = pacing_delay(self._usage, slowdown_percent=self.options.slowdown_percent)
        if delay > 0:
            log.info("%s: %s at %.0f%% of Meta's limit; pausing %.1f s before the next call",
                     self.platform_account_id, self._usage.budget or "a budget",
                     self._usage.percent, delay)
            self._usage = UsageReading()
            self._wait(delay)

    def _wait(self, seconds: float) -> None:
        self.stats.waited_seconds += seconds
        self._sleep(seconds)

    def _progress(self, stage: str, done: int) -> None:
        if self._on_progress is not None:
            self._on_progress(stage, done)

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self._secrets)


def insight_params(level: str, since: date, until: date,
                   only: CampaignFilter | None = None) -> dict[str, Any]:
    """The query of a daily insights pull at ``level``: deleted and archived objects included,
    attributed with each ad set's own attribution setting, as Ads Manager shows it; ``only``
    keeps some campaigns (``IN``) or leaves them out (``NOT_IN``)."""
    filtering = [{"field": f"{level}.effective_status", "operator": "IN",
                  "value": list(ALL_EFFECTIVE_STATUSES)}]
    if only is not None:
        filtering.append({"field": "campaign.id", "operator": only[0], "value": list(only[1])})
    return {"level": level, "time_increment": 1,
            "time_range": {"since": since.isoformat(), "until": until.isoformat()},
            "filtering": filtering, "use_unified_attribution_setting": True}


def _campaign_parts(campaign_ids: tuple[str, ...],
                    only: CampaignFilter | None) -> list[CampaignFilter]:
    """How a failing single-day job splits by campaign: all campaigns -> the two halves of the
    listed ones and every other (unlisted: deleted, archived); a set of campaigns -> its halves;
    a single campaign, or the unlisted rest -> no further."""
    if only is None:
        if not campaign_ids:
            return []
        half = (len(campaign_ids) + 1) // 2
        halves = [ids for ids in (campaign_ids[:half], campaign_ids[half:]) if ids]
        return [("IN", ids) for ids in halves] + [("NOT_IN", campaign_ids)]
    operator, ids = only
    if operator != "IN" or len(ids) < 2:
        return []
    half = len(ids) // 2
    return [("IN", ids[:half]), ("IN", ids[half:])]


def _described(only: CampaignFilter | None) -> str:
    if only is None:
        return ""
    operator, ids = only
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return f" ({'campaigns' if operator == 'IN' else 'campaigns other than'} {shown})"


def _asks_for_less_data_code(code: int | None, subcode: int | None, message: str) -> bool:
    return ((code, subcode) in _ASK_FOR_ASYNC
            or (code == 1 and "reduce the amount of data" in message.lower()))


def _asks_for_less_data(exc: MetaApiError) -> bool:
    return _asks_for_less_data_code(exc.code, exc.subcode, exc.message)


def _is_appsecret_problem(code: int | None, message: str) -> bool:
    return code == 100 and "appsecret_proof" in message


def _auth_hint(code: int | None, message: str) -> str:
    if _is_appsecret_problem(code, message):
        return ("the Meta app requires appsecret_proof: put the app secret in an environment "
                "variable, set ADSENTINEL_META_APP_SECRET_ENV to its NAME, then run "
                "`adsentinel accounts enable`")
    return ("create a new access token with ads_read on this account and run `adsentinel "
            "accounts add` again")
