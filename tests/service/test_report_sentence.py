"""The report shows detection's sentence in the report's language: rebuilt from the anomaly's
stored facts in Portuguese, as stored in English."""

from __future__ import annotations

from test_report import URL, build_account

from adsentinel.db.engine import session_scope
from adsentinel.db.models import Anomaly
from adsentinel.i18n import language
from adsentinel.service.report import build_report, render_report

#: the medium spend rise of the report's shop (900 vs 100 expected) as detection writes it
STORED = ("Spend R$ 900.00 vs R$ 100.00 expected (9.0x); CPM, CPC, CTR and CPL are normal: a "
          "budget typo?")
DRIVERS = {"spend": 900.0, "impressions": 10000.0, "clicks": 150.0, "leads": 8.0,
           "rule": "spend_budget_change"}


def shop_with_a_real_sentence(session_factory):
    _account, ids, _entities = build_account(session_factory)
    with session_scope(session_factory) as session:
        row = session.get(Anomaly, ids["medium"])
        row.message, row.drivers = STORED, DRIVERS


def render(session_factory, locale):
    return render_report(session_factory=session_factory,
                         report=build_report(session_factory=session_factory),
                         lang=language(locale), public_url=URL)


def test_the_report_in_portuguese_tells_detections_sentence_in_portuguese(session_factory):
    shop_with_a_real_sentence(session_factory)
    page = render(session_factory, "pt_BR")
    assert ("Valor usado R$ 900,00 vs. R$ 100,00 esperado (9,0x); CPM, CPC, CTR e CPL estão "
            "normais: um erro de digitação no orçamento?") in page
    assert "a budget typo" not in page
    assert "cpl moved" in page  # a sentence the facts do not rebuild is shown as stored


def test_the_report_in_english_tells_the_stored_sentence(session_factory):
    shop_with_a_real_sentence(session_factory)
    assert STORED in render(session_factory, "en")
