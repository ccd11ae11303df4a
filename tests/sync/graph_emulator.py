"""A small Graph API emulator: a real HTTP server on 127.0.0.1 that answers the Marketing API
calls the sync makes, in the documented shapes, so that the sync is tested over real sockets
through the SDK's own ``requests`` session (``ADSENTINEL_META_GRAPH_URL`` points at it).

Where each shape comes from (the live API cannot be reached from the test machines):

* nodes, edges and paging (``data`` + ``paging.cursors.before/after`` + ``paging.next`` only
  when there is a next page): Graph API reference "Paginated results", and the SDK's
  ``facebook_business/api.py`` ``Cursor.load_next_page``, which follows ``cursors.after`` only
  while ``next`` is present;
* the ad account node, ``/campaigns``, ``/adsets``, ``/ads`` (deleted objects never listed,
  archived ones only when ``effective_status`` asks for them): Marketing API reference, Ad
  Account edges, and "Storing and retrieving ad objects" (archive / delete);
* ``/insights`` (strings for numbers, ``actions`` / ``action_values`` lists, ``date_start`` /
  ``date_stop`` per day with ``time_increment=1``; deleted and archived objects left out unless
  ``filtering`` on ``<level>.effective_status`` names them): Marketing API, Insights API
  reference and its "Deleted and archived objects" section; field names from the SDK's
  ``adobjects/adsinsights.py``; values shaped like the recorded payloads in ``payloads/``;
* asynchronous report jobs (``POST /insights`` -> ``report_run_id``; ``GET /<id>`` ->
  ``async_status`` / ``async_percent_completion``; ``GET /<id>/insights``): Insights API
  "Asynchronous jobs", the SDK's ``adobjects/adreportrun.py``, and ``payloads/async_job_*.json``;
* errors (``{"error": {message, type, code, error_subcode, fbtrace_id}}``; 190 expired token,
  2635 deprecated version, 100 missing/invalid ``appsecret_proof``, 80000 throttled with the
  ``X-Business-Use-Case-Usage`` / ``X-Ad-Account-Usage`` headers): Graph API "Handling errors",
  Marketing API "Rate limiting", the SDK's ``session.py`` (``appsecret_proof`` =
  HMAC-SHA256(app secret, token)), and ``payloads/error_*.json`` / ``headers_*.json``;
* ``/me/adaccounts``, ``/<business>/owned_ad_accounts`` and ``client_ad_accounts``: Graph API
  reference, User and Business edges.

Delivery numbers are computed from the ad's index and the day (no per-row storage), so the
emulator serves 100,000 ads without holding their days in memory; ``overrides`` change single
ad days (restatements, a day Meta now reports as zero).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

VERSION = "v26.0"
QUIET_HEADERS = {
    "X-Business-Use-Case-Usage": json.dumps({"1234567890": [{
        "type": "ads_insights", "call_count": 3, "total_cputime": 2, "total_time": 2,
        "estimated_time_to_regain_access": 0, "ads_api_access_tier": "standard_access"}]}),
    "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 1.5, "reset_time_duration": 0,
                                      "ads_api_access_tier": "standard_access"}),
}
THROTTLED_HEADERS = {
    "X-Business-Use-Case-Usage": json.dumps({"1234567890": [{
        "type": "ads_insights", "call_count": 100, "total_cputime": 63, "total_time": 100,
        "estimated_time_to_regain_access": 1, "ads_api_access_tier": "standard_access"}]}),
    "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 100, "reset_time_duration": 60,
                                      "ads_api_access_tier": "standard_access"}),
}
HIDDEN_BY_DEFAULT = frozenset({"DELETED", "ARCHIVED"})


@dataclass
class EmulatedAccount:
    """One ad account: ``campaigns`` x ``adsets_per_campaign`` x ``ads_per_adset`` objects whose
    ids derive from the account number; every ad delivers on most days."""

    number: int
    campaigns: int = 2
    adsets_per_campaign: int = 2
    ads_per_adset: int = 2
    currency: str = "EUR"
    timezone_name: str = "Europe/Lisbon"
    name: str | None = None
    account_status: int = 1
    statuses: dict[str, str] = field(default_factory=dict)  # object id -> effective_status
    overrides: dict[tuple[str, date], dict[str, Any] | None] = field(default_factory=dict)
    #: ad set id -> (first day, attribution setting it reports from that day on)
    attribution_from: dict[str, tuple[date, str]] = field(default_factory=dict)

    def attribution_setting(self, adset_id: str, day: date) -> str:
        """Every third ad set counts one-day clicks only, unless changed from some day on."""
        changed = self.attribution_from.get(adset_id)
        if changed is not None and day >= changed[0]:
            return changed[1]
        return "1d_click" if int(adset_id) % 3 == 0 else "7d_click_1d_view"

    @property
    def id(self) -> str:
        return f"act_{self.number}"

    def campaign_ids(self) -> list[str]:
        return [f"{self.number}{c:04d}" for c in range(self.campaigns)]

    def adset_ids(self) -> list[tuple[str, str]]:
        """(ad set id, campaign id)"""
        return [(f"{cid}{s:03d}", cid) for cid in self.campaign_ids()
                for s in range(self.adsets_per_campaign)]

    def ads(self) -> Iterator[tuple[int, str, str, str]]:
        """(index, ad id, ad set id, campaign id)"""
        index = 0
        for sid, cid in self.adset_ids():
            for a in range(self.ads_per_adset):
                yield index, f"{sid}{a:04d}", sid, cid
                index += 1

    def status(self, object_id: str) -> str:
        return self.statuses.get(object_id, "ACTIVE")

    def ad_day(self, index: int, ad_id: str, day: date) -> dict[str, Any] | None:
        """The ad's numbers on ``day`` (None: no delivery, Meta sends no row)."""
        if (ad_id, day) in self.overrides:
            return self.overrides[(ad_id, day)]
        seed = int.from_bytes(hashlib.blake2b(f"{ad_id}|{day}".encode(), digest_size=8)
                              .digest(), "big")
        if seed % 11 == 0:
            return None
        impressions = 800 + seed % 9000
        reach = int(impressions / (1.1 + (seed >> 8) % 50 / 100))
        link_clicks = impressions * (5 + (seed >> 16) % 20) // 1000
        leads = (seed >> 24) % 6
        spend = round(impressions * (4 + (seed >> 32) % 8) / 1000, 2)
        actions = [{"action_type": "link_click", "value": str(link_clicks)}]
        values = []
        if leads:
            actions += [{"action_type": "lead", "value": str(leads)},
                        {"action_type": "onsite_conversion.lead_grouped", "value": str(leads)}]
            values.append({"action_type": "lead", "value": f"{leads * 25:.2f}"})
        return {"spend": f"{spend:.2f}", "impressions": str(impressions),
                "inline_link_clicks": str(link_clicks), "clicks": str(link_clicks * 3 // 2),
                "reach": str(reach), "frequency": f"{impressions / reach:.6f}",
                "actions": actions, "action_values": values}


@dataclass
class Job:
    """An asynchronous report job: its query, and how many polls it takes."""

    id: str
    account: EmulatedAccount
    params: dict[str, str]
    fails: bool
    polls_left: int


@dataclass
class Fault:
    """Misbehave on the next ``times`` requests whose path matches ``path`` (a regex), after
    letting ``skip`` of them through: ``throttle`` (error 80000 with usage headers), ``stall``
    (no answer for ``seconds``), or ``error`` (``status`` and ``body``)."""

    path: str
    kind: str
    times: int = 1
    seconds: float = 0.0
    status: int = 500
    body: dict[str, Any] | None = None
    method: str | None = None
    skip: int = 0


class GraphEmulator:
    """The server and its world. ``start()`` returns the base URL to give the sync."""

    def __init__(self, *, tokens: dict[str, list[str]] | None = None,
                 app_secret: str | None = None, served_versions: tuple[str, ...] = (VERSION,),
                 page_limit_max: int = 500, sync_row_limit: int = 50_000,
                 max_job_days: int | None = None, max_job_campaigns: int | None = None,
                 job_polls: int = 1) -> None:
        self.accounts: dict[str, EmulatedAccount] = {}
        self.tokens = tokens or {}  # token -> account ids it reads ("*": all)
        self.expired_tokens: set[str] = set()
        self.app_secret = app_secret
        self.served_versions = served_versions
        self.page_limit_max = page_limit_max
        self.sync_row_limit = sync_row_limit
        self.max_job_days = max_job_days
        self.max_job_campaigns = max_job_campaigns
        self.job_polls = job_polls
        self.fail_next_jobs = 0
        self.businesses: dict[str, dict[str, list[str]]] = {}
        self.faults: list[Fault] = []
        #: the usage headers of every answer that is not a throttling error
        self.usage_headers: dict[str, str] = dict(QUIET_HEADERS)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.jobs: dict[str, Job] = {}
        self._rows: tuple[tuple, list[dict[str, Any]]] | None = None  # the pull being paged
        self._job_ids = itertools.count(9_000_000_001)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- the world ----------------------------------------------------------------------------

    def add_account(self, account: EmulatedAccount, *tokens: str) -> EmulatedAccount:
        self.accounts[account.id] = account
        for token in tokens:
            self.tokens.setdefault(token, []).append(account.id)
        return account

    def asked(self, method: str, path_pattern: str) -> list[dict[str, str]]:
        """Params of every request whose path (without the version) matches the pattern."""
        with self._lock:
            return [p for m, path, p in self.requests
                    if m == method and re.fullmatch(path_pattern, path)]

    # --- the server ---------------------------------------------------------------------------

    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # the http.server API names it
                emulator._handle(self, "GET")

            def do_POST(self) -> None:
                emulator._handle(self, "POST")

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._release.set()  # stalled answers end now
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(request.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        if length:
            params.update({k: v[0] for k, v in parse_qs(request.rfile.read(length).decode())
                           .items()})
        parts = url.path.strip("/").split("/", 1)
        version, path = parts[0], (parts[1] if len(parts) > 1 else "")
        with self._lock:
            self.requests.append((method, path, params))
            fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "stall":
            self._release.wait(fault.seconds)
            return self._send(request, 200, {"data": [], "paging": {}})
        status, body, headers = self._answer(method, version, path, params, fault)
        self._send(request, status, body, headers)

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json; charset=UTF-8")
            request.send_header("Content-Length", str(len(data)))
            for name, value in (headers or self.usage_headers).items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a read timeout): what a stalled server sees

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and re.fullmatch(fault.path, path) and \
                    (fault.method is None or fault.method == method):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    # --- answers ------------------------------------------------------------------------------

    def _answer(self, method: str, version: str, path: str, params: dict[str, str],
                fault: Fault | None) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        refused = self._refusal(version, params)
        if refused is not None:
            return 400, refused, None
        if fault is not None and fault.kind == "throttle":
            return 400, error("(#80000) There have been too many calls from this ad-account. "
                              "Wait a bit and try again.", "OAuthException", 80000,
                              subcode=2446079), THROTTLED_HEADERS
        if fault is not None and fault.kind == "error":
            return fault.status, fault.body or error("An unknown error occurred",
                                                     "OAuthException", 1, subcode=99), None
        token = params["access_token"]
        node, _, edge = path.partition("/")
        if node in self.jobs:
            return self._job(node, edge, params)
        if node == "me" and edge == "adaccounts":
            return self._page(params, [self._account_node(a, params) for a in
                                       self._readable(token)])
        if node in self.businesses and edge in ("owned_ad_accounts", "client_ad_accounts"):
            ids = self.businesses[node][edge]
            return self._page(params, [self._account_node(self.accounts[i], params)
                                       for i in ids if i in self._readable_ids(token)])
        account = self.accounts.get(node)
        if account is None or account.id not in self._readable_ids(token):
            return 400, error(f"(#100) Unsupported get request. Object with ID '{node}' does "
                              "not exist, cannot be loaded due to missing permissions, or "
                              "does not support this operation.", "GraphMethodException", 100,
                              subcode=33), None
        if edge == "":
            return 200, self._account_node(account, params), None
        if edge in ("campaigns", "adsets", "ads") and method == "GET":
            return self._page(params, self._structure(account, edge, params))
        if edge == "insights" and method == "POST":
            return self._start_job(account, params)
        if edge == "insights":
            rows = self._insight_rows(account, params)
            if len(rows) > self.sync_row_limit:
                return 400, error("Please reduce the amount of data you're asking for, then "
                                  "retry your request", "OAuthException", 1, subcode=99), None
            return self._page(params, rows)
        return 400, error(f"(#100) Tried accessing nonexisting field ({edge})",
                          "OAuthException", 100), None

    def _insight_rows(self, account: EmulatedAccount, params: dict[str, str], *,
                      after: str | None = None) -> list[dict[str, Any]]:
        """The rows of a pull, computed on its first page and kept for the following ones
        (without it, paging through 100,000 rows would compute them once per page)."""
        key = (account.id, *(params.get(k) for k in ("level", "time_range", "filtering",
                                                      "fields")))
        after = params.get("after") if after is None else after
        with self._lock:
            if after and self._rows is not None and self._rows[0] == key:
                return self._rows[1]
        rows = list(insight_rows(account, params))
        with self._lock:
            self._rows = (key, rows)
        return rows

    def _refusal(self, version: str, params: dict[str, str]) -> dict[str, Any] | None:
        if version not in self.served_versions:
            return error(f"(#2635) You are calling a deprecated version of the Ads API. Please "
                         f"update to the latest version: {self.served_versions[-1]}.",
                         "OAuthException", 2635)
        token = params.get("access_token")
        if not token:
            return error("An active access token must be used to query information about the "
                         "current user.", "OAuthException", 2500)
        if token in self.expired_tokens:
            return error("Error validating access token: Session has expired on Tuesday, "
                         "24-Nov-26 10:00:00 PST.", "OAuthException", 190, subcode=463)
        if token not in self.tokens:
            return error("Invalid OAuth access token - Cannot parse access token",
                         "OAuthException", 190)
        if self.app_secret:
            proof = params.get("appsecret_proof")
            if not proof:
                return error("API calls from the server require an appsecret_proof argument",
                             "GraphMethodException", 100)
            wanted = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(proof, wanted):
                return error("Invalid appsecret_proof provided in the API argument",
                             "GraphMethodException", 100)
        return None

    def _readable_ids(self, token: str) -> set[str]:
        ids = self.tokens.get(token, [])
        return set(self.accounts) if "*" in ids else set(ids)

    def _readable(self, token: str) -> list[EmulatedAccount]:
        return [a for i, a in self.accounts.items() if i in self._readable_ids(token)]

    @staticmethod
    def _account_node(account: EmulatedAccount, params: dict[str, str]) -> dict[str, Any]:
        full = {"id": account.id, "account_id": str(account.number),
                "name": account.name or f"Account {account.number}",
                "currency": account.currency, "timezone_name": account.timezone_name,
                "account_status": account.account_status}
        return select_fields(full, params)

    def _structure(self, account: EmulatedAccount, edge: str,
                   params: dict[str, str]) -> list[dict[str, Any]]:
        asked = set(json.loads(params["effective_status"])) if "effective_status" in params \
            else None

        def listed(status: str) -> bool:
            if status == "DELETED":
                return False  # deleted objects are read by id only
            return status in asked if asked is not None else status not in HIDDEN_BY_DEFAULT

        if edge == "campaigns":
            items = [{"id": cid, "name": f"Campaign {cid}", "status": "ACTIVE",
                      "effective_status": account.status(cid)} for cid in account.campaign_ids()]
        elif edge == "adsets":
            items = [{"id": sid, "name": f"Ad set {sid}", "status": "ACTIVE",
                      "effective_status": account.status(sid), "campaign_id": cid}
                     for sid, cid in account.adset_ids()]
        else:
            items = [{"id": aid, "name": f"Ad {aid}", "status": "ACTIVE",
                      "effective_status": account.status(aid), "adset_id": sid,
                      "campaign_id": cid} for _, aid, sid, cid in account.ads()]
        return [select_fields(item, params) for item in items if listed(item["effective_status"])]

    def _page(self, params: dict[str, str], items: list[dict[str, Any]]
              ) -> tuple[int, dict[str, Any], None]:
        limit = min(int(params.get("limit", 25)), self.page_limit_max)
        start = int(base64.b64decode(params["after"]).decode()) if params.get("after") else 0
        chunk = items[start:start + limit]
        body: dict[str, Any] = {"data": chunk}
        if chunk:
            body["paging"] = {"cursors": {
                "before": base64.b64encode(str(start).encode()).decode(),
                "after": base64.b64encode(str(start + len(chunk)).encode()).decode()}}
            if start + len(chunk) < len(items):
                following = {k: v for k, v in params.items()
                             if k not in ("access_token", "appsecret_proof")}
                following["after"] = body["paging"]["cursors"]["after"]
                body["paging"]["next"] = f"{self.url}/{VERSION}/?{urlencode(following)}"
        return 200, body, None

    def _start_job(self, account: EmulatedAccount,
                   params: dict[str, str]) -> tuple[int, dict[str, Any], None]:
        time_range = json.loads(params["time_range"])
        days = (date.fromisoformat(time_range["until"])
                - date.fromisoformat(time_range["since"])).days + 1
        keep = _campaign_filter(params)
        campaigns = sum(1 for cid in account.campaign_ids() if keep(cid))
        fails = self.fail_next_jobs > 0 or (self.max_job_days is not None
                                            and days > self.max_job_days) or (
            self.max_job_campaigns is not None and campaigns > self.max_job_campaigns)
        self.fail_next_jobs = max(0, self.fail_next_jobs - 1)
        job_id = str(next(self._job_ids))
        self.jobs[job_id] = Job(job_id, account, params, fails, self.job_polls)
        return 200, {"report_run_id": job_id}, None

    def _job(self, job_id: str, edge: str,
             params: dict[str, str]) -> tuple[int, dict[str, Any], None]:
        job = self.jobs[job_id]
        if edge == "insights":
            return self._page(params, self._insight_rows(job.account, job.params,
                                                         after=params.get("after")))
        job.polls_left -= 1
        if job.polls_left > 0:
            status, percent = "Job Running", 50
        else:
            status, percent = ("Job Failed", 0) if job.fails else ("Job Completed", 100)
        return 200, select_fields({"id": job_id, "account_id": str(job.account.number),
                                   "async_status": status, "async_percent_completion": percent},
                                  params), None


def error(message: str, kind: str, code: int, *, subcode: int | None = None) -> dict[str, Any]:
    """A Graph API error body."""
    body: dict[str, Any] = {"message": message, "type": kind, "code": code,
                            "fbtrace_id": "AemulatorTrace0000000"}
    if subcode is not None:
        body["error_subcode"] = subcode
    return {"error": body}


def select_fields(item: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """What ``fields`` asked for (and ``id``), as the Graph API answers."""
    wanted = requested_fields(params) - {""}
    return {k: v for k, v in item.items() if k == "id" or not wanted or k in wanted}


def requested_fields(params: dict[str, str]) -> set[str]:
    """``fields`` as a GET sends it (``a,b``) or as the SDK posts it (a JSON list)."""
    text = params.get("fields", "")
    return set(json.loads(text)) if text.startswith("[") else set(text.split(","))


def insight_rows(account: EmulatedAccount, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Daily insights rows at ``params['level']``, sorted by day then object, with the
    effective-status filtering Meta applies (deleted and archived objects left out unless the
    filter names them)."""
    level = params.get("level", "ad")
    time_range = json.loads(params["time_range"])
    since, until = date.fromisoformat(time_range["since"]), date.fromisoformat(time_range["until"])
    statuses = _status_filter(params, level)
    keep_campaign = _campaign_filter(params)
    fields = requested_fields(params)
    day = since
    while day <= until:
        groups: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {}
        for index, ad_id, adset_id, campaign_id in account.ads():
            own = {"ad": ad_id, "adset": adset_id, "campaign": campaign_id}[level]
            if not statuses(account.status(own)) or not keep_campaign(campaign_id):
                continue
            numbers = account.ad_day(index, ad_id, day)
            if numbers is None:
                continue
            groups.setdefault(own, []).append((ad_id, adset_id, campaign_id, numbers))
        for own, members in groups.items():
            yield _row(account, level, own, members, day, fields)
        day += timedelta(days=1)


def _campaign_filter(params: dict[str, str]) -> Callable[[str], bool]:
    """``filtering`` on ``campaign.id`` with ``IN`` or ``NOT_IN`` (every campaign without)."""
    for rule in json.loads(params.get("filtering", "[]")):
        if rule.get("field") == "campaign.id":
            ids = set(rule["value"])
            wanted = rule["operator"] == "IN"
            return lambda cid, ids=ids: (cid in ids) == wanted
    return lambda _cid: True


def _status_filter(params: dict[str, str], level: str) -> Callable[[str], bool]:
    for rule in json.loads(params.get("filtering", "[]")):
        if rule.get("field") == f"{level}.effective_status" and rule.get("operator") == "IN":
            allowed = set(rule["value"])
            return lambda status: status in allowed
    return lambda status: status not in HIDDEN_BY_DEFAULT


def _row(account: EmulatedAccount, level: str, own: str,
         members: list[tuple[str, str, str, dict[str, Any]]], day: date,
         fields: set[str]) -> dict[str, Any]:
    ad_id, adset_id, campaign_id, _ = members[0]
    total = {name: sum(float(m[3].get(name, 0)) for m in members)
             for name in ("spend", "impressions", "inline_link_clicks", "clicks", "reach")}
    reach = int(total["reach"]) if len(members) == 1 else \
        max(int(m[3].get("reach", 0)) for m in members) + int(
            (total["reach"] - max(int(m[3].get("reach", 0)) for m in members)) * 0.6)
    row: dict[str, Any] = {"campaign_id": campaign_id, "campaign_name": f"Campaign {campaign_id}",
                           "date_start": day.isoformat(), "date_stop": day.isoformat(),
                           "account_id": str(account.number)}
    if level in ("adset", "ad"):
        row.update(adset_id=adset_id, adset_name=f"Ad set {adset_id}")
    if level == "adset":
        row["attribution_setting"] = account.attribution_setting(adset_id, day)
    if level == "ad":
        row.update(ad_id=ad_id, ad_name=f"Ad {ad_id}")
        numbers = members[0][3]
        row.update({k: v for k, v in numbers.items() if v not in (None, [])})
    else:
        row.update(spend=f"{total['spend']:.2f}", impressions=str(int(total["impressions"])),
                   inline_link_clicks=str(int(total["inline_link_clicks"])), reach=str(reach))
    keep = fields | {"date_start", "date_stop"}
    return {k: v for k, v in row.items() if k in keep}


def main() -> None:
    """``python graph_emulator.py --accounts N --ads M``: serve N accounts of M ads each to any
    token starting with EAA, print the URL, serve until stdin closes (benchmarks/bench_sync.py
    runs it in its own process so that its memory is not the sync's)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--ads", type=int, default=2000)
    parser.add_argument("--token", default="EAAbenchToken000000000000000000000")
    args = parser.parse_args()
    emulator = GraphEmulator(tokens={args.token: ["*"]})
    for number in range(1, args.accounts + 1):
        per_adset = max(1, min(10, args.ads))
        adsets = max(1, args.ads // per_adset)
        campaigns = max(1, adsets // 5)
        emulator.add_account(EmulatedAccount(number=700_000 + number, campaigns=campaigns,
                                             adsets_per_campaign=max(1, adsets // campaigns),
                                             ads_per_adset=per_adset))
    print(emulator.start(), flush=True)
    sys.stdin.read()
    print(len(emulator.requests), flush=True)
    emulator.stop()


if __name__ == "__main__":
    main()
