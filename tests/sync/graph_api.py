"""Serving recorded Graph API payloads through the SDK's own HTTP stack (``responses`` intercepts
the ``requests`` session that ``FacebookSession`` owns), and remembering what was asked."""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import responses

PAYLOADS = Path(__file__).parent / "payloads"
ACCOUNT = "act_1234567890"
TOKEN = "EAAGm0PX4ZCpsBAKZBexampleZBtokenZD0123456789"
_GRAPH = re.compile(r"https://graph\.facebook\.com/v\d+\.\d+/.*")


def payload(name: str) -> dict:
    """A recorded JSON body from ``payloads/``."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


class RecordedGraph:
    """Answers Graph API requests from queues of recorded responses, keyed by method, path
    (without the version) and paging cursor; the last answer of a queue repeats."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.routes: dict[tuple[str, str, str | None], deque] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, _GRAPH, callback=self._answer)

    def on(self, method: str, path: str, *answers: tuple[int, str | dict, dict | None],
           after: str | None = None) -> RecordedGraph:
        self.routes[(method, path, after)].extend(answers)
        return self

    def ok(self, method: str, path: str, name: str, *, after: str | None = None,
           headers: str = "headers_quiet") -> RecordedGraph:
        return self.on(method, path, (200, payload(name), payload(headers)), after=after)

    def _answer(self, request):
        url = urlparse(request.url)
        path = url.path.split("/", 2)[2].rstrip("/")
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if request.body:
            body = request.body.decode() if isinstance(request.body, bytes) else request.body
            params.update({k: v[0] for k, v in parse_qs(body).items()})
        self.requests.append((request.method, path, params))
        queue = self.routes.get((request.method, path, params.get("after")))
        if not queue:
            return 500, {}, json.dumps({"error": {"message": f"unexpected {request.method} "
                                                  f"{path} {params}", "code": 100}})
        status, body, headers = queue[0] if len(queue) == 1 else queue.popleft()
        text = body if isinstance(body, str) else json.dumps(body)
        return status, dict(headers or {}), text

    def asked(self, method: str, path: str) -> list[dict[str, str]]:
        """Params of every request made to ``path``."""
        return [p for m, pa, p in self.requests if m == method and pa == path]


def serve_structure(graph: RecordedGraph) -> RecordedGraph:
    """The account, its campaigns and ad sets (one page each) and its ads (two pages)."""
    graph.ok("GET", ACCOUNT, "account")
    graph.ok("GET", f"{ACCOUNT}/campaigns", "campaigns")
    graph.ok("GET", f"{ACCOUNT}/adsets", "adsets")
    graph.ok("GET", f"{ACCOUNT}/ads", "ads_page1")
    graph.ok("GET", f"{ACCOUNT}/ads", "ads_page2", after="QVFIUkdWU0tGWjBn")
    return graph


def serve_insights(graph: RecordedGraph, *pages: str) -> RecordedGraph:
    """Synchronous insights pages, chained by the cursors recorded in them."""
    after = None
    for name in pages:
        graph.ok("GET", f"{ACCOUNT}/insights", name, after=after)
        body = payload(name)
        after = body["paging"]["cursors"]["after"] if "next" in body["paging"] else None
    return graph
