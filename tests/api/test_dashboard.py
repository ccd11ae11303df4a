"""The dashboard over HTTP: login with a token, the session cookie, CSRF on every form, the
overview and entity pages, status buttons, and the same scope rules as the API."""

from __future__ import annotations

import json
import re

import pytest
from html_tree import parse

from adsentinel.api.routes_dashboard import PLOTLY_PATH
from adsentinel.service.tokens import revoke_token


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, world, token: str = "full", next_path: str = "/") -> str:
    """Log in through the form; returns the session's CSRF token for later forms."""
    page = client.get("/login")
    response = client.post("/login", data={"token": world.tokens[token],
                                           "csrf_token": _csrf(page.text), "next": next_path},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return _csrf(client.get("/").text)


def test_pages_need_a_login(client, world):
    response = client.get(f"/entities/{world.entities['a']['ad']}?start=2026-09-01",
                          follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/login?next=/entities/{world.entities['a']['ad']}%3Fstart%3D2026-09-01")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"


def test_login_sets_a_signed_httponly_lax_cookie_and_goes_where_asked(client, world):
    page = client.get("/login")
    response = client.post("/login", data={"token": world.tokens["full"],
                                           "csrf_token": _csrf(page.text),
                                           "next": f"/entities/{world.entities['a']['ad']}"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/entities/{world.entities['a']['ad']}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("adsentinel_session=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert world.tokens["full"] not in cookie  # the session holds the token's id, not the token
    assert client.get("/", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_never_redirects_off_site(client, world, target):
    page = client.get("/login")
    response = client.post("/login", data={"token": world.tokens["full"],
                                           "csrf_token": _csrf(page.text), "next": target},
                           follow_redirects=False)
    assert response.headers["location"] == "/"


def test_login_refuses_bad_tokens_and_missing_csrf(client, world):
    page = client.get("/login")
    wrong = client.post("/login", data={"token": "ads_wrong", "csrf_token": _csrf(page.text)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    forged = client.post("/login", data={"token": world.tokens["full"], "csrf_token": "guess"})
    assert forged.status_code == 400 and "expired" in forged.text
    assert client.get("/", follow_redirects=False).status_code == 303  # still logged out


def test_overview_lists_open_incidents_worst_first_with_their_messages(client, world):
    login(client, world)
    soup = parse(client.get("/").text)
    items = soup.find_all("li", cls="anomaly")
    ids = [int(li["data-anomaly-id"]) for li in items]
    # open ones only (the retracted one is not there); no money at stake on any of them, so
    # severity decides (critical first), then the score, then the newest
    assert ids == [world.anomalies["high_a_old"], world.anomalies["open_b"],
                   world.anomalies["open_a"]]
    assert items[1].find(cls="message").text == "CPL 45.10 vs 14.20 expected (3.2x)"
    assert items[1].find("a", cls="open-anomaly")["href"].startswith("/entities/")
    counts = {}
    for row in soup.find("section", cls="account-status").find("tbody").find_all("tr"):
        cells = [td.text.strip() for td in row.find_all("td")]
        counts[cells[0]] = cells[1:5]
    assert counts["act_a"] == ["1", "1", "0", "0"]  # critical, high, medium, low
    critical = parse(client.get("/?severity=critical").text)
    assert [int(li["data-anomaly-id"]) for li in critical.find_all("li", cls="anomaly")] == [
        world.anomalies["high_a_old"]]


def test_scoped_login_sees_only_its_account(client, world):
    login(client, world, "scoped_a")
    soup = parse(client.get("/").text)
    assert world.anomalies["open_b"] not in [int(li["data-anomaly-id"])
                                             for li in soup.find_all("li", cls="anomaly")]
    assert "act_b" not in soup.text
    assert client.get(f"/entities/{world.entities['b']['ad']}").status_code == 404
    assert client.get(f"/?account={world.account_b}").status_code == 404


def test_entity_page_charts_every_metric_with_band_and_anomaly_marker(client, world):
    login(client, world)
    ad = world.entities["a"]["ad"]
    soup = parse(client.get(f"/entities/{ad}").text)
    figures = {holder["data-figure-for"]: json.loads(holder.text)
               for holder in soup.find_all("script", data_figure_for=True)}
    assert list(figures)[0] == "chart-cpl"  # the metric with an anomaly comes first
    assert set(figures) >= {"chart-spend", "chart-impressions", "chart-ctr", "chart-cpm"}
    cpl = {trace["meta"]: trace for trace in figures["chart-cpl"]["data"]}
    assert cpl["anomaly"]["customdata"] == [world.anomalies["open_a"]]
    assert "CPL 45.10" in cpl["anomaly"]["text"][0]
    spend = {trace["meta"]: trace for trace in figures["chart-spend"]["data"]}
    assert spend["expected range"]["fill"] == "toself"
    assert spend["expected value"]["y"][0] is None and spend["expected value"]["y"][-1] is not None
    # clicks and reach are not judged on their own: no "expected" in their legends
    for unjudged in ("chart-clicks", "chart-reach"):
        assert {t["meta"] for t in figures[unjudged]["data"]} == {"actual"}
    row = soup.find("tr", id=f"anomaly-{world.anomalies['open_a']}")
    assert row.find("td", cls="status").text.strip() == "open"
    assert [b.text for b in row.find_all("button")] == [
        "Acknowledge", "Resolved", "Expected", "False positive"]
    assert soup.find("ul", cls="children") is None  # an ad has no children
    assert soup.find("script", src=PLOTLY_PATH) is not None


def test_entity_page_lists_children_and_links_up(client, world):
    login(client, world)
    soup = parse(client.get(f"/entities/{world.entities['a']['adset']}").text)
    assert len(soup.find("ul", cls="children").find_all("li")) == 2
    crumbs = [a["href"] for a in soup.find("nav", cls="crumbs").find_all("a")]
    assert crumbs[-1] == f"/entities/{world.entities['a']['campaign']}"


def test_buttons_change_the_status_with_csrf(client, world):
    csrf = login(client, world)
    anomaly = world.anomalies["open_a"]
    forged = client.post(f"/anomalies/{anomaly}/status",
                         data={"status": "false_positive", "csrf_token": "forged"})
    assert forged.status_code == 403
    missing = client.post(f"/anomalies/{anomaly}/status", data={"status": "false_positive"})
    assert missing.status_code == 403
    done = client.post(f"/anomalies/{anomaly}/status",
                       data={"status": "false_positive", "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/entities/{world.entities['a']['ad']}#anomaly-{anomaly}"
    page = parse(client.get(done.headers["location"]).text)
    cell = page.find("tr", id=f"anomaly-{anomaly}").find("td", cls="status")
    assert cell["data-status"] == "false_positive" and "by full" in cell.text
    bad = client.post(f"/anomalies/{anomaly}/status", data={"status": "gone", "csrf_token": csrf})
    assert bad.status_code == 422


def test_read_only_login_has_no_buttons_and_cannot_post(client, world):
    csrf = login(client, world, "read_only")
    page = parse(client.get(f"/entities/{world.entities['a']['ad']}").text)
    assert all(cell.find_all("form") == [] for cell in page.find_all("td", cls="actions"))
    assert page.find_all("td", cls="actions")
    response = client.post(f"/anomalies/{world.anomalies['open_a']}/status",
                           data={"status": "acknowledged", "csrf_token": csrf})
    assert response.status_code == 403 and "read-only" in response.text


def test_revoking_the_token_ends_the_session(client, world, session_factory):
    login(client, world)
    revoke_token(session_factory=session_factory, name_or_prefix="full")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(client, world):
    csrf = login(client, world)
    client.post("/logout", data={"csrf_token": "forged"})
    assert client.get("/", follow_redirects=False).status_code == 200  # a forged logout fails
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_pages_and_bad_ranges_are_html_errors(client, world):
    login(client, world)
    missing = client.get("/entities/999999")
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert "text/html" in missing.headers["content-type"]
    backwards = client.get(f"/entities/{world.entities['a']['ad']}?start=2026-09-20&end=2026-09-01")
    assert backwards.status_code == 400
    assert client.get(f"/entities/{world.entities['a']['ad']}?start=bad").status_code == 422


def test_assets_are_served_locally_with_a_strict_policy(client):
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/charts.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    policy = client.get("/login").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]


def test_band_outline_breaks_where_a_bound_is_missing():
    from adsentinel.api.charts import band_outline

    days = ["d1", "d2", "d3", "d4", "d5"]
    xs, ys = band_outline(days, [1, 1, None, 2, 2], [3, 3, 3, 4, 5])
    assert xs == ["d1", "d2", "d2", "d1", None, "d4", "d5", "d5", "d4"]
    assert ys == [3, 3, 1, 1, None, 4, 5, 2, 2]
    assert band_outline(days, [None] * 5, [1] * 5) == ([], [])


def test_chart_top_leaves_headroom_over_what_is_shown():
    from adsentinel.api.charts import chart_top

    assert chart_top([1.0, None, 4.0, float("nan")]) == pytest.approx(5.2)
    assert chart_top([None, 0.0]) is None


def test_overview_groups_a_childs_anomaly_under_its_open_incident(client, world,
                                                                  session_factory):
    from adsentinel.db.models import Anomaly

    with session_factory() as session:  # the ad's CPL is part of the ad set's incident
        session.get(Anomaly, world.anomalies["open_a"]).incident_id = world.anomalies["high_a_old"]
        session.commit()
    login(client, world)
    soup = parse(client.get("/").text)
    listed = {int(li["data-anomaly-id"]): li for li in soup.find_all("li", cls="anomaly")}
    assert world.anomalies["open_a"] not in listed
    assert "and 1 related open anomaly of the entities below it" in (
        listed[world.anomalies["high_a_old"]].find("p", cls="related").text)
    with session_factory() as session:  # the incident is closed: its open child shows again
        session.get(Anomaly, world.anomalies["high_a_old"]).status = "acknowledged"
        session.commit()
    soup = parse(client.get("/").text)
    assert world.anomalies["open_a"] in {int(li["data-anomaly-id"])
                                         for li in soup.find_all("li", cls="anomaly")}


def test_names_and_messages_cannot_inject_markup(client, world, session_factory):
    from adsentinel.db.models import Anomaly, Entity

    evil = "</script><script>alert(1)</script><b>x</b>"
    with session_factory() as session:
        session.get(Anomaly, world.anomalies["open_a"]).message = evil
        session.get(Entity, world.entities["a"]["ad"]).name = evil
        session.commit()
    login(client, world)
    for path in ("/", f"/entities/{world.entities['a']['ad']}"):
        html = client.get(path).text
        assert "<script>alert(1)" not in html and "<b>x</b>" not in html
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html
    soup = parse(client.get(f"/entities/{world.entities['a']['ad']}").text)
    cpl = json.loads(soup.find("script", data_figure_for="chart-cpl").text)
    assert evil in cpl["data"][-1]["text"][0]  # intact as data, inert as markup


def test_entity_page_refuses_dates_that_would_overflow(client, world):
    login(client, world)
    response = client.get(f"/entities/{world.entities['a']['ad']}?end=0001-01-05")
    assert response.status_code == 400 and "out of range" in response.text
