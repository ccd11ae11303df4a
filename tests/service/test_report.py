"""The HTML report: summary first (accounts, range, incidents by severity, money at stake), open
incidents at medium and above worst first with links to their dashboard pages, rates in %, in
English or Brazilian Portuguese; and `adsentinel report` through the real console entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta

import pytest

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, Anomaly, DailyInsight, Entity
from adsentinel.i18n import language
from adsentinel.service.report import build_report, render_report, write_report

LAST_DAY = date(2026, 11, 19)
URL = "https://ads.example.com"


def build_account(session_factory, *, name="Loja Azul", currency="BRL", locale=None):
    """Campaign "Black Friday" > ad set "Mulheres" > ad "Video 1", 40 days of rows, and
    anomalies: a critical CPL rise with money at stake, a high CTR drop with none stored yet, a
    medium spend rise with more money, a low one, a resolved one and a grouped child."""
    with session_scope(session_factory) as session:
        account = AdAccount(name=name, currency=currency, locale=locale)
        session.add(account)
        session.flush()
        campaign = Entity(account_id=account.id, level="campaign", platform_id="c1",
                          name="Black Friday")
        session.add(campaign)
        session.flush()
        adset = Entity(account_id=account.id, level="adset", platform_id="s1", name="Mulheres",
                       parent_id=campaign.id)
        session.add(adset)
        session.flush()
        ad = Entity(account_id=account.id, level="ad", platform_id="a1", name="Video 1",
                    parent_id=adset.id)
        session.add(ad)
        session.flush()
        for entity in (campaign, adset, ad):
            for offset in range(40):
                session.add(DailyInsight(entity_id=entity.id, day=LAST_DAY - timedelta(offset),
                                         spend=100.0, impressions=10000, clicks=150, leads=8,
                                         reach=8000))

        def anomaly(entity, metric, severity, score, actual, expected, *, day=LAST_DAY,
                    impact=None, status="open", incident_id=None, started=None):
            row = Anomaly(account_id=account.id, entity_id=entity.id, day=day, metric=metric,
                          detectors="robust_z", actual=actual, expected=expected,
                          lower=expected * 0.8, upper=expected * 1.2, direction="up",
                          score=score, severity=severity, message=f"{metric} moved",
                          status=status, incident_id=incident_id)
            row.impact_amount = impact
            if started is not None:  # the run of anomalous days detection stored
                row.started, row.duration_days = started, (day - started).days + 1
            session.add(row)
            session.flush()
            return row.id

        ids = {
            "critical": anomaly(campaign, "cpl", "critical", 95.0, 45.10, 14.20, impact=1564.97,
                                started=LAST_DAY - timedelta(2)),
            "high": anomaly(ad, "ctr", "high", 85.0, 0.004, 0.0125, day=LAST_DAY - timedelta(3)),
            "medium": anomaly(adset, "spend", "medium", 60.0, 900.0, 100.0, impact=800.0),
            "low": anomaly(ad, "cpm", "low", 40.0, 30.0, 25.0),
            "resolved": anomaly(ad, "cpc", "critical", 99.0, 9.0, 1.0, status="resolved"),
        }
        anomaly(ad, "cpl", "high", 80.0, 50.0, 14.0, incident_id=ids["critical"])
        return account.id, ids, (campaign.id, adset.id, ad.id)


@pytest.fixture
def shop(session_factory):
    return build_account(session_factory)


def test_summary_counts_open_incidents_by_severity_and_adds_up_money_at_stake(
        session_factory, shop):
    report = build_report(session_factory=session_factory)
    assert report.accounts == ("Loja Azul",)
    assert (report.first_day, report.last_day) == (LAST_DAY - timedelta(29), LAST_DAY)
    # open incidents only (not the resolved one, not the child grouped under the critical)
    assert report.by_severity == {"critical": 1, "high": 1, "medium": 1, "low": 1}
    assert report.at_stake == {"BRL": pytest.approx(2364.97)}
    assert report.without_amount == 1  # the high one: nothing stored, nothing estimated
    # worst first: severity, then money at stake; lows are not listed
    assert [i.anomaly.severity for i in report.incidents] == ["critical", "high", "medium"]


def test_the_page_opens_with_the_summary_and_links_each_incident_to_its_dashboard_page(
        session_factory, shop):
    _account, ids, (campaign, _adset, ad) = shop
    page = render_report(session_factory=session_factory,
                         report=build_report(session_factory=session_factory),
                         lang=language("en"), public_url=URL + "/")
    assert page.index('id="summary"') < page.index("<section>")
    assert page.count("<section>") == 3
    assert "R$ 2,364.97" in page and "1 incident without an amount" in page
    assert f'href="{URL}/entities/{campaign}#anomaly-{ids["critical"]}"' in page
    assert f'href="{URL}/entities/{ad}#anomaly-{ids["high"]}"' in page
    assert "0.40%" in page and "1.25%" in page  # rates as the text writes them, not 0.004
    assert "--ink: #212121" in page  # the dashboard's own style sheet
    headings = re.findall(r'<span class="sev sev-(\w+)">', page.split('id="summary"')[1])
    assert headings[-3:] == ["critical", "high", "medium"]
    assert "2026-10-21 to 2026-11-19" in page
    assert "since 2026-11-17 (3 days, latest 2026-11-19)" in page  # the stored run
    assert "since 2026-11-16 (1 day, latest 2026-11-16)" in page  # none stored: its own day
    assert "Next step: Compare this campaign&#39;s CPM and CTR since 2026-11-17" in page


def test_the_report_in_portuguese(session_factory, shop):
    page = render_report(session_factory=session_factory,
                         report=build_report(session_factory=session_factory),
                         lang=language("pt_BR"), public_url=URL)
    assert '<html lang="pt-BR">' in page
    assert "Relatório do adsentinel" in page and "Dinheiro em jogo" in page
    assert "R$ 2.364,97" in page and "R$ 1.564,97" in page
    assert '"separators":",."' in page and '"tickprefix":"R$ "' in page  # the charts' axes
    assert "0,40%" in page and "R$ 45,10" in page
    assert "21/10/2026 a 19/11/2026" in page
    assert "crítica 1" in page and "Campanha Black Friday" in page
    assert "Próximo passo: Compare o CPM e o CTR desta campanha desde 17/11/2026" in page
    assert "desde 17/11/2026 (3 dias, último 19/11/2026)" in page
    assert "Open incidents" not in page and "Money at stake" not in page


def test_no_incident_says_so(session_factory):
    build_account(session_factory)
    report = build_report(session_factory=session_factory, first_day=date(2026, 1, 1),
                          last_day=date(2026, 1, 31))
    assert report.incidents == [] and report.by_severity["critical"] == 0
    page = render_report(session_factory=session_factory, report=report, lang=language("en"),
                         public_url=URL)
    assert "No open incidents at medium severity or above." in page


def test_write_report_is_atomic_and_limits_the_charts(session_factory, shop, tmp_path):
    report = build_report(session_factory=session_factory, limit=1)
    assert len(report.incidents) == 1 and report.not_shown == 2
    path = write_report(session_factory=session_factory, path=tmp_path / "r" / "report.html",
                        report=report, lang=language("en"), public_url=URL)
    page = path.read_text(encoding="utf-8")
    assert "2 more incidents not shown (raise --limit)." in page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


# --- the CLI ---------------------------------------------------------------------------------


def run_cli(*args: str, cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(env, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "adsentinel", *args], capture_output=True,
                          text=True, env=environment, cwd=cwd, timeout=180)


@pytest.mark.slow  # CLI process starts
def test_report_command_writes_the_account_language_and_says_so_in_the_cli_language(tmp_path):
    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database

    env = {"ADSENTINEL_DATA_DIR": str(tmp_path / "data")}
    factory = make_session_factory(open_database(load_settings(data_dir=tmp_path / "data")))
    build_account(factory)

    edited = run_cli("accounts", "edit", "Loja Azul", "--locale", "pt-br", cwd=tmp_path,
                     env={**env, "LANG": "pt_BR.UTF-8"})
    assert edited.returncode == 0, edited.stderr
    assert "conta Loja Azul: alertas e relatório em Português (Brasil)" in edited.stdout

    done = run_cli("report", "--account", "Loja Azul", "-o", "r.html", cwd=tmp_path,
                   env={**env, "LANG": "C.UTF-8"})
    assert done.returncode == 0, done.stderr
    assert "report of 3 incidents at medium or above written to r.html" in done.stdout
    assert "Relatório do adsentinel" in (tmp_path / "r.html").read_text(encoding="utf-8")

    english = run_cli("report", "--account", "Loja Azul", "--locale", "en", "-o", "e.html",
                      cwd=tmp_path, env={**env, "ADSENTINEL_LOCALE": "pt_BR"})
    assert english.returncode == 0, english.stderr
    assert "relatório de 3 incidentes de gravidade média ou maior gravado em e.html" \
        in english.stdout
    assert "adsentinel report" in (tmp_path / "e.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_cli_errors_in_portuguese_and_bad_locales_are_usage_errors(tmp_path):
    env = {"ADSENTINEL_DATA_DIR": str(tmp_path / "data"), "LANG": "pt_BR.UTF-8"}
    bad = run_cli("report", "--locale", "fr", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("erro: ")
    assert "unknown language 'fr': use one of en, pt_BR (tente 'adsentinel report --help')" \
        in bad.stderr
    day = run_cli("report", "--since", "2026-13-01", cwd=tmp_path, env=env)
    assert day.returncode == 2  # a bad value is a usage error
    assert day.stderr == ("erro: --since deve ser uma data AAAA-MM-DD, recebido '2026-13-01' "
                          "(tente 'adsentinel report --help')\n")
    missing = run_cli("accounts", "edit", "Nenhuma", "--locale", "en", cwd=tmp_path, env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    english = run_cli("report", "--locale", "fr", cwd=tmp_path, env={**env, "LANG": "C.UTF-8"})
    assert english.stderr.startswith("error: ") and "(try 'adsentinel report --help')" \
        in english.stderr
