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
    assert next(iter(figures)) == "chart-cpl"  # the metric with an anomaly comes first
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


def test_chart_hover_texts_follow_the_pages_language(client, world, session_factory):
    """Trace names, hover values, dates and separators in pt-BR, formatted by Babel as the rest
    of the page; English readers get English words and ISO dates."""
    from adsentinel.db.models import AdAccount

    _set(session_factory, AdAccount, world.account_a, currency="BRL")
    login(client, world)
    ad = world.entities["a"]["ad"]

    def figures(language):
        soup = parse(client.get(f"/entities/{ad}", headers={"Accept-Language": language}).text)
        return {holder["data-figure-for"]: json.loads(holder.text)
                for holder in soup.find_all("script", data_figure_for=True)}

    portuguese = figures("pt-BR")
    cpl = {trace["meta"]: trace for trace in portuguese["chart-cpl"]["data"]}
    assert portuguese["chart-cpl"]["layout"]["title"]["text"] == "CPL (BRL)"
    assert portuguese["chart-cpl"]["layout"]["separators"] == ",."
    assert portuguese["chart-cpl"]["layout"]["yaxis"]["tickprefix"] == "R$ "
    assert portuguese["chart-cpl"]["layout"]["xaxis"]["hoverformat"] == "%d/%m/%Y"
    assert cpl["expected value"]["name"] == "valor esperado"
    assert cpl["expected range"]["name"] == "faixa esperada"
    assert all(text is None or text.startswith("R$ ") for text in cpl["actual"]["text"])
    assert any("," in text for text in cpl["actual"]["text"] if text)  # decimal comma
    spend = {trace["meta"]: trace for trace in portuguese["chart-spend"]["data"]}
    ranged = [t for t in spend["expected value"]["text"] if t and "faixa normal de" in t]
    assert ranged and all(t.count("R$ ") == 3 for t in ranged)
    assert cpl["anomaly"]["text"][0].startswith("alta, pontuação 80 (aberta): ")
    # detection's sentence as the page's table shows it (this hand-made anomaly's facts do not
    # rebuild it, so the stored English)
    assert cpl["anomaly"]["text"][0].endswith(": CPL 45.10 vs 14.20 expected (3.2x)")
    thin = {t["meta"]: t for chart in portuguese.values() for t in chart["data"]}
    if "too little volume to judge" in thin:
        assert thin["too little volume to judge"]["name"] == "volume pequeno demais para julgar"
    assert spend["actual"]["name"] == "Gasto"

    english = figures("en")
    cpl = {trace["meta"]: trace for trace in english["chart-cpl"]["data"]}
    assert english["chart-cpl"]["layout"]["separators"] == ".,"
    assert english["chart-cpl"]["layout"]["xaxis"]["hoverformat"] == "%Y-%m-%d"
    assert cpl["expected value"]["name"] == "expected value"
    spend = {trace["meta"]: trace for trace in english["chart-spend"]["data"]}
    assert any("normal range" in t for t in spend["expected value"]["text"] if t)
    assert cpl["anomaly"]["text"][0] == "high, score 80 (open): CPL 45.10 vs 14.20 expected (3.2x)"


def test_entity_page_refuses_dates_that_would_overflow(client, world):
    login(client, world)
    response = client.get(f"/entities/{world.entities['a']['ad']}?end=0001-01-05")
    assert response.status_code == 400 and "out of range" in response.text


# --- the incident list: worst first, filters, pages, buttons, export, language ----------------


def _add_anomaly(session_factory, world, *, key="a", level="ad", day=None, metric="spend",
                 severity="medium", score=60.0, impact=None, status="open", started=None,
                 detectors="robust_z+iqr", direction="up", actual=120.0, expected=40.0) -> int:
    """Store one more anomaly on the world's entity of ``level`` of account ``key``."""
    from datetime import timedelta

    from api_world import LAST_DAY

    from adsentinel.db.models import Anomaly

    day = day or LAST_DAY
    with session_factory() as session:
        row = Anomaly(account_id=getattr(world, f"account_{key}"),
                      entity_id=world.entities[key][level], day=day, metric=metric,
                      detectors=detectors, actual=actual, expected=expected, lower=10.0,
                      upper=60.0, direction=direction, score=score, severity=severity,
                      message=f"{metric} moved", drivers={"spend": actual, "leads": 3},
                      status=status, impact_amount=impact,
                      started=started or day - timedelta(days=2),
                      duration_days=3 if impact is not None else None)
        session.add(row)
        session.commit()
        return row.id


def _listed(client, url="/") -> list[int]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return [int(li["data-anomaly-id"]) for li in parse(response.text).find_all("li",
                                                                               cls="anomaly")]


def _set(session_factory, model, row_id, **values):
    with session_factory() as session:
        row = session.get(model, row_id)
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()


def test_money_at_stake_comes_first_then_severity_and_lows_wait_behind_a_filter(
        client, world, session_factory):
    from adsentinel.db.models import AdAccount

    _set(session_factory, AdAccount, world.account_a, currency="BRL")
    spike = _add_anomaly(session_factory, world, impact=1564.97, severity="medium")
    small = _add_anomaly(session_factory, world, level="adset", impact=10.0, severity="high")
    low = _add_anomaly(session_factory, world, level="campaign", metric="cpm", impact=9999.0,
                       severity="low")
    login(client, world)
    w = world.anomalies
    assert _listed(client) == [spike, small, w["high_a_old"], w["open_b"], w["open_a"]]
    assert _listed(client, "/?min_severity=low")[0] == low  # the lows, when asked for
    card = parse(client.get("/").text).find("li", data_anomaly_id=str(spike))
    assert card.find(cls="money").text == "R$ 1,564.97 at stake"
    assert card.find(cls="since").text.startswith("since Sep 28, 2026 (3 days)")
    assert "Check the budget edits of this ad" in card.find(cls="next-step").text
    assert "Sep 28, 2026" in card.find(cls="next-step").text
    totals = parse(client.get("/").text).find("p", cls="totals")
    assert "5 incidents" in totals.text and "R$ 1,574.97" in totals.text


def test_filters_narrow_the_list(client, world, session_factory):
    from datetime import timedelta

    from api_world import LAST_DAY

    from adsentinel.db.models import AdAccount, Entity

    w = world.anomalies
    with session_factory() as session:  # the ad set above account a's ad
        adset_id = session.get(Entity, world.entities["a"]["ad"]).parent_id
    _set(session_factory, Entity, adset_id, name="Remarketing Verão")
    _set(session_factory, AdAccount, world.account_b, name="Loja Azul")
    acknowledged = _add_anomaly(session_factory, world, key="b", status="acknowledged",
                                severity="high")
    login(client, world)
    assert set(_listed(client, f"/?account={world.account_a}")) == {w["open_a"], w["high_a_old"]}
    assert _listed(client, "/?metric=ctr") == [w["high_a_old"]]
    assert _listed(client, "/?level=adset") == [w["high_a_old"]]
    assert _listed(client, "/?severity=high") == [w["open_b"], w["open_a"]]
    assert _listed(client, "/?min_severity=critical") == [w["high_a_old"]]
    assert _listed(client, f"/?end={LAST_DAY - timedelta(days=1)}") == [w["high_a_old"]]
    assert set(_listed(client, f"/?start={LAST_DAY}&end={LAST_DAY}")) == {w["open_a"],
                                                                         w["open_b"]}
    assert _listed(client, "/?status=acknowledged") == [acknowledged]
    assert acknowledged in _listed(client, "/?status=any")
    # the ad set's name, any case: its own anomalies and its ads'
    by_name = [w["high_a_old"]] if adset_id == world.entities["a"]["adset"] else []
    assert _listed(client, "/?q=verão") == [*by_name, w["open_a"]]
    with session_factory() as session:  # the ad's Meta id finds the ad's own anomaly
        ad_meta_id = session.get(Entity, world.entities["a"]["ad"]).platform_id
    assert _listed(client, f"/?q={ad_meta_id}&account={world.account_a}") == [w["open_a"]]
    assert _listed(client, f"/?q={ad_meta_id}9") == []  # a Meta id matches whole
    assert _listed(client, "/?q=loja") == [w["open_b"]]  # the account's name
    assert _listed(client, "/?q=act_b") == [w["open_b"]]  # the account's Meta id
    assert _listed(client, "/?q=nothing-is-called-this") == []
    page = parse(client.get("/?metric=ctr").text)
    chosen = page.find("select", name="metric").find("option", selected=True)
    assert chosen["value"] == "ctr"  # the form remembers the filter


def test_pages_go_past_the_first_fifty_and_keep_the_filters(client, world, session_factory):
    from datetime import timedelta

    from api_world import LAST_DAY

    ids = {_add_anomaly(session_factory, world, key="b", metric="spend",
                        day=LAST_DAY - timedelta(days=i), impact=float(i), started=LAST_DAY)
           for i in range(1, 121)}
    login(client, world)
    url = f"/?account={world.account_b}"
    first, third = _listed(client, url), _listed(client, url + "&page=3")
    assert len(first) == 50 and len(third) == 21  # 121 in all: 120 + open_b
    seen = set(first) | set(_listed(client, url + "&page=2")) | set(third)
    assert seen == ids | {world.anomalies["open_b"]}
    assert first[0] != third[0] and first[:2] == sorted(first[:2], reverse=True)
    pages = parse(client.get(url + "&page=2").text).find("nav", cls="pages")
    links = {a["rel"]: a["href"] for a in pages.find_all("a")}
    assert links == {"prev": f"/?account={world.account_b}&page=1",
                     "next": f"/?account={world.account_b}&page=3"}
    past = client.get(url + "&page=4")
    assert past.status_code == 400 and "past the last page (3)" in past.text
    assert "text/html" in past.headers["content-type"]


@pytest.mark.parametrize("query, named", [
    ("severity=bogus", "severity"), ("min_severity=urgent", "min_severity"),
    ("start=yesterday", "start"), ("account=abc", "account"), ("page=0", "page"),
    ("sort=cheapest", "sort"), ("metric=roas", "metric"), ("status=closed", "status")])
def test_bad_query_values_get_the_dashboards_error_page(client, world, query, named):
    login(client, world)
    response = client.get(f"/?{query}")
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    message = parse(response.text).find("p", cls="error").text
    assert message.startswith("This page cannot use these values:") and f"{named}=" in message


def test_every_status_button_works_from_the_list_and_comes_back_to_it(client, world,
                                                                      session_factory):
    from adsentinel.db.models import Anomaly

    csrf = login(client, world)
    anomaly = world.anomalies["open_b"]
    card = parse(client.get("/").text).find("li", data_anomaly_id=str(anomaly))
    assert [b.text for b in card.find_all("button")] == [
        "Acknowledge", "Resolved", "Expected", "False positive"]
    back = f"/?status=any&account={world.account_b:d}"
    for status in ("acknowledged", "resolved", "expected", "false_positive", "open"):
        done = client.post(f"/anomalies/{anomaly}/status",
                           data={"status": status, "csrf_token": csrf, "next": back},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == back
        with session_factory() as session:
            row = session.get(Anomaly, anomaly)
            assert (row.status, row.status_by) == (status, "full")
        shown = parse(client.get(back).text).find("li", data_anomaly_id=str(anomaly))
        buttons = [b["class"] for b in shown.find_all("button")]
        assert f"btn-{status}" not in buttons and len(buttons) == 4
    assert anomaly in _listed(client)  # reopened: on the list again
    off_site = client.post(f"/anomalies/{anomaly}/status",
                           data={"status": "acknowledged", "csrf_token": csrf,
                                 "next": "https://evil.example/"}, follow_redirects=False)
    assert off_site.headers["location"] == "/"


def test_export_gives_the_filtered_list_as_csv_and_xlsx_with_formulas_made_inert(
        client, world, session_factory):
    import csv
    import io

    from openpyxl import load_workbook

    from adsentinel.db.models import Entity

    _set(session_factory, Entity, world.entities["a"]["ad"], name="=HYPERLINK(\"http://x\")")
    spike = _add_anomaly(session_factory, world, impact=1564.97)
    login(client, world)
    page = parse(client.get(f"/?account={world.account_a}").text)
    listed = [int(li["data-anomaly-id"]) for li in page.find_all("li", cls="anomaly")]
    link = page.find("a", id="export-csv")["href"]
    assert link == f"/export?account={world.account_a}&format=csv"
    response = client.get(link)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == listed == [spike, world.anomalies["high_a_old"],
                                                      world.anomalies["open_a"]]
    assert rows[0]["impact_amount"] == "1564.97" and rows[0]["currency"] == "USD"
    assert rows[0]["ad"] == "'=HYPERLINK(\"http://x\")"  # shown as text, never run
    assert rows[0]["next_step"].startswith("Check the budget edits")
    sheet = load_workbook(io.BytesIO(client.get(
        f"/export?account={world.account_a}&format=xlsx").content)).active
    values = list(sheet.values)
    header = values[0]
    assert [v[header.index("id")] for v in values[1:]] == listed
    assert values[1][header.index("impact_amount")] == 1564.97
    assert values[1][header.index("ad")] == "'=HYPERLINK(\"http://x\")"
    lows = client.get(f"/export?account={world.account_a}&min_severity=critical")
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(lows.content.decode("utf-8-sig")))
            ] == [world.anomalies["high_a_old"]]
    assert client.get("/export?format=pdf").status_code == 422


def test_brazilian_portuguese_from_the_browser_or_the_switch(client, world, session_factory):
    from adsentinel.db.models import AdAccount

    _set(session_factory, AdAccount, world.account_a, currency="BRL")
    spike = _add_anomaly(session_factory, world, impact=1564.97)
    login(client, world)
    portuguese = client.get("/", headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
    page = parse(portuguese.text)
    assert page.find("html")["lang"] == "pt-BR"
    assert portuguese.headers["content-language"] == "pt-BR"
    assert page.find("h1").text == "Incidentes"
    card = page.find("li", data_anomaly_id=str(spike))
    assert card.find(cls="money").text == "R$ 1.564,97 em risco"
    assert card.find(cls="headline").text == "Gasto R$ 120,00 contra R$ 40,00 esperado (3,0x)"
    assert card.find("p", cls="message")["lang"] == "en"  # detection's own sentence, marked
    assert card.find(cls="since").text.startswith("desde 28 de set. de 2026 (3 dias)")
    assert "Verifique as edições de orçamento deste anúncio" in card.find(cls="next-step").text
    assert [b.text for b in card.find_all("button")][:2] == ["Reconhecer", "Resolvido"]
    # the switch wins over the browser, and is remembered
    switched = client.get("/language?lang=en&next=/%3Fmin_severity%3Dlow",
                          follow_redirects=False)
    assert switched.headers["location"] == "/?min_severity=low"
    assert "adsentinel_lang=en" in switched.headers["set-cookie"]
    english = parse(client.get("/", headers={"Accept-Language": "pt-BR"}).text)
    assert english.find("h1").text == "Incidents"
    client.get("/language?lang=pt_BR")
    entity = parse(client.get(f"/entities/{world.entities['a']['ad']}").text)
    assert entity.find("th").text == "Dia"
    assert client.get("/nope").text.count("Voltar aos incidentes") == 1  # the error page too


@pytest.mark.parametrize(("level", "phrase"), [
    ("ad", "Verifique as edições de orçamento deste anúncio e dos níveis acima"),
    ("adset", "Verifique as edições de orçamento deste conjunto de anúncios e dos níveis acima"),
    ("campaign", "Verifique as edições de orçamento desta campanha e dos níveis acima"),
])
def test_a_next_step_names_its_level_as_portuguese_says_it(client, world, session_factory,
                                                            level, phrase):
    """The catalog holds "of this ad / ad set / campaign" whole: a campaign is "desta campanha",
    never "deste campanha"."""
    from datetime import timedelta

    from api_world import LAST_DAY

    spike = _add_anomaly(session_factory, world, level=level, impact=1564.97,
                         day=LAST_DAY - timedelta(days=10))
    login(client, world)
    page = parse(client.get("/", headers={"Accept-Language": "pt-BR"}).text)
    step = page.find("li", data_anomaly_id=str(spike)).find(cls="next-step").text
    assert phrase in step
    assert "deste campanha" not in step and "(campanha)" not in step


def test_the_catalog_translates_every_message_of_the_dashboard():
    """Every message the templates and the dashboard's Python mark is in the pt_BR catalog,
    translated, with the same placeholders; no message is left over from older pages."""
    import re
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    import adsentinel

    root = Path(adsentinel.__file__).parent
    method_map, options_map = parse_mapping_cfg(
        (root / "locale" / "dashboard.cfg").open(encoding="utf-8"))
    marked = {message[2] for message in extract_from_dir(
        root, method_map, options_map, keywords={"_": None, "N_": None, "gettext": None,
                                                 "ngettext": (1, 2)})}
    marked = {m if isinstance(m, str) else tuple(m) for m in marked}
    with (root / "locale" / "pt_BR" / "LC_MESSAGES" / "dashboard.po").open("rb") as source:
        catalog = read_po(source)
    entries = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
    assert set(entries) == marked
    for message_id, entry in entries.items():
        texts = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        assert all(texts) and not entry.fuzzy, message_id
        wanted = set(re.findall(r"%\(\w+\)[sdr]", str(message_id)))
        for text in texts:
            assert set(re.findall(r"%\(\w+\)[sdr]", text)) == wanted, message_id


def test_a_broken_sync_shows_a_banner_and_each_account_its_status(client, world,
                                                                  session_factory):
    from adsentinel.db.models import AdAccount

    _set(session_factory, AdAccount, world.account_a,
         needs_attention="Meta refused the token (code 190, expired): run adsentinel accounts "
                         "add again with a new token")
    login(client, world)
    page = parse(client.get("/").text)
    banners = page.find_all("div", cls="sync-broken")
    assert [b["data-account-id"] for b in banners] == [str(world.account_a)]
    assert "Sync broken for act_a" in banners[0].text and "code 190" in banners[0].text
    rows = {r["data-account-id"]: r for r in page.find("section", cls="account-status")
            .find("tbody").find_all("tr")}
    assert "code 190" in rows[str(world.account_a)].find("td", cls="attention-list").text
    assert "never trained" in rows[str(world.account_b)].find("td", cls="attention-list").text
    assert "code 190" not in rows[str(world.account_b)].text
    assert "Sep 30, 2026" in rows[str(world.account_b)].text  # data up to its last day
    entity = parse(client.get(f"/entities/{world.entities['a']['ad']}").text)
    assert entity.find("div", cls="sync-broken") is not None
    other = parse(client.get(f"/entities/{world.entities['b']['ad']}").text)
    assert other.find("div", cls="sync-broken") is None


def test_the_sync_broken_banner_tells_the_marks_kind_in_the_readers_language(
        client, world, session_factory):
    from adsentinel.db.models import AdAccount

    mark = ("Meta access token expired or invalid (code 190): create a new token with ads_read, "
            "set META_TOKEN_A, then run `adsentinel accounts enable` (or `accounts add`)")
    _set(session_factory, AdAccount, world.account_a, needs_attention=mark,
         needs_attention_kind="token_expired")
    login(client, world)
    english = parse(client.get("/", headers={"Accept-Language": "en"}).text)
    assert mark in english.find("div", cls="sync-broken").text  # the particulars, as written
    for path in ("/", f"/entities/{world.entities['a']['ad']}"):
        banner = parse(client.get(path, headers={"Accept-Language": "pt-BR"}).text).find(
            "div", cls="sync-broken").text
        assert "o token de acesso da Meta expirou ou é inválido: crie um novo token" in banner
        assert "expired or invalid" not in banner


def test_the_api_link_opens_a_reference_that_needs_no_internet(client, world):
    login(client, world)
    assert parse(client.get("/").text).find("a", href="/api-reference") is not None
    response = client.get("/api-reference")
    assert response.status_code == 200
    page = parse(response.text)
    rows = {(r.find("code", cls="method").text, r.find_all("code")[1].text)
            for r in page.find_all("tr", cls="operation")}
    assert ("GET", "/api/v1/anomalies") in rows and ("PATCH", "/api/v1/anomalies/{anomaly_id}") in rows
    for node in page.walk():  # nothing loaded from elsewhere
        for attribute in ("src", "href"):
            assert not node.attrs.get(attribute, "").startswith(("http:", "https:", "//"))


def test_plotly_is_one_cached_gzipped_asset(client, world):

    login(client, world)
    page = parse(client.get(f"/entities/{world.entities['a']['ad']}").text)
    assert [s["src"] for s in page.find_all("script", src=True)] == [PLOTLY_PATH,
                                                                     "/static/charts.js"]
    packed = client.get(PLOTLY_PATH, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < 2_000_000
    plain = client.get(PLOTLY_PATH, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > 4_000_000
    assert packed.content == plain.content  # httpx undid the gzip: the same script


# --- charts agree with the anomalies ------------------------------------------------------------


def _points(values, expected=None, lower=None, upper=None):
    from datetime import date, timedelta

    from adsentinel.api.series import DayPoints, MetricPoint

    n = len(values)
    expected, lower, upper = (v or [None] * n for v in (expected, lower, upper))
    return [DayPoints(date(2026, 9, 1) + timedelta(days=i),
                      {"cpl": MetricPoint(values[i], expected[i], lower[i], upper[i])})
            for i in range(n)]


def test_a_pooled_anomaly_is_drawn_over_its_days_at_the_pooled_value():
    from datetime import date

    from adsentinel.api.charts import metric_figure
    from adsentinel.db.models import Anomaly

    points = _points([10.0, 11.0, 30.0, 33.0], expected=[10.0] * 4, lower=[5.0] * 4,
                     upper=[40.0] * 4)
    pooled = Anomaly(id=7, day=date(2026, 9, 4), metric="cpl", detectors="nb_rate_2d",
                     actual=31.4, severity="high", score=80.0, status="open", message="m")
    traces = {t["meta"]: t for t in metric_figure("cpl", points, [pooled], "BRL")["data"]}
    assert traces["judged together"]["x"] == ["2026-09-03", "2026-09-04"]
    assert traces["judged together"]["y"] == [31.4, 31.4]
    assert traces["anomaly"]["y"] == [31.4]  # at the pooled value, not 33.0


def test_days_with_too_little_volume_get_a_cross_instead_of_a_band_over_the_whole_axis():
    from adsentinel.api.charts import metric_figure, too_little_volume

    points = _points([10.0, 12.0, 0.0, 11.0], expected=[10.0, 10.0, 10.0, 10.0],
                     lower=[6.0, 0.0, 0.0, 7.0], upper=[14.0, 90.0, None, 13.0])
    traces = {t["meta"]: t for t in metric_figure("cpl", points, [], "BRL")["data"]}
    assert traces["too little volume to judge"]["x"] == ["2026-09-02", "2026-09-03"]
    band_days = {x for x in traces["expected range"]["x"] if x is not None}
    assert band_days == {"2026-09-01", "2026-09-04"}  # the count-based interval where it says something
    assert too_little_volume(10.0, 0.0, 5.0, top=20.0) is False  # a low band that ends on the chart
    assert too_little_volume(None, None, None, top=20.0) is False  # not judged: nothing to say


def test_blank_filter_fields_mean_any_and_leave_the_url(client, world):
    login(client, world)
    blank = client.get("/?account=&min_severity=critical&level=&q=&start=", follow_redirects=False)
    assert blank.status_code == 303 and blank.headers["location"] == "/?min_severity=critical"
    assert _listed(client, "/?account=&min_severity=critical") == [world.anomalies["high_a_old"]]


def test_an_anomaly_is_grouped_only_under_an_incident_on_the_list(client, world,
                                                                 session_factory):
    from adsentinel.db.models import Anomaly

    low_incident = _add_anomaly(session_factory, world, level="campaign", metric="cpm",
                                severity="low")
    _set(session_factory, Anomaly, world.anomalies["open_a"], incident_id=low_incident)
    login(client, world)
    # the lows are hidden, so the ad's high CPL is listed on its own, not hidden under a low
    assert world.anomalies["open_a"] in _listed(client)
    with_lows = _listed(client, "/?min_severity=low")
    assert low_incident in with_lows and world.anomalies["open_a"] not in with_lows
