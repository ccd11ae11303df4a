"""The dashboard shows detection's sentence in the reader's language: rebuilt from the
anomaly's stored facts for a Portuguese reader (in place of the translated headline over the
English original), the stored English for an English reader or when the facts do not rebuild it."""

from __future__ import annotations

from html_tree import parse
from test_dashboard import _add_anomaly, _set, login

from adsentinel.db.models import AdAccount, Anomaly

STORED = ("Spend R$ 120.00 vs R$ 40.00 expected (3.0x); its ad set's spend is as usual: the ad "
          "set's budget moved towards this ad")
PORTUGUESE = ("Valor usado R$ 120,00 vs. R$ 40,00 esperado (3,0x); o valor usado do seu conjunto "
              "de anúncios está normal: o orçamento do conjunto de anúncios foi direcionado a "
              "este anúncio")
DRIVERS = {"spend": 120.0, "impressions": 9000.0, "clicks": 90.0, "leads": 3.0,
           "rule": "ads_hold_no_budget", "parent_level": "ad set", "parent_spend_ratio": 1.0}


def _spend_rise(session_factory, world) -> int:
    _set(session_factory, AdAccount, world.account_a, currency="BRL")
    anomaly = _add_anomaly(session_factory, world, impact=80.0)
    _set(session_factory, Anomaly, anomaly, message=STORED, drivers=DRIVERS)
    return anomaly


def test_a_portuguese_reader_reads_the_whole_sentence_in_portuguese(client, world,
                                                                   session_factory):
    anomaly = _spend_rise(session_factory, world)
    login(client, world)
    page = parse(client.get("/", headers={"Accept-Language": "pt-BR"}).text)
    card = page.find("li", data_anomaly_id=str(anomaly))
    message = card.find("p", cls="message")
    assert message.text == PORTUGUESE
    assert "lang" not in message.attrs and card.find(cls="headline") is None
    entity = parse(client.get(f"/entities/{world.entities['a']['ad']}",
                              headers={"Accept-Language": "pt-BR"}).text)
    told = entity.find("tr", id=f"anomaly-{anomaly}").find("td", cls="message").text
    assert told.startswith(PORTUGUESE) and "moved towards" not in told


def test_an_english_reader_reads_the_stored_sentence(client, world, session_factory):
    anomaly = _spend_rise(session_factory, world)
    login(client, world)
    page = parse(client.get("/", headers={"Accept-Language": "en"}).text)
    assert page.find("li", data_anomaly_id=str(anomaly)).find(
        "p", cls="message").text == STORED
