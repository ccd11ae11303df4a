"""The "sync broken" message in the account's language: its explanation, what to do and the
streak's start in Portuguese for a pt_BR account, unchanged in English, the subject and the
rendered text of the alert following it."""

from __future__ import annotations

from datetime import UTC, datetime

from adsentinel.alerts.messages import render_text, subject_of
from adsentinel.sync.health import RunOutcome, broken_payload, sync_health

START = datetime(2026, 11, 18, 14, 5, tzinfo=UTC)


def payload(locale=None, *, runs=3, needs_attention=None, error="HTTP 500 from Meta"):
    outcomes = [RunOutcome(10 - i, "failed", START, error) for i in range(runs)]
    health = sync_health(outcomes, needs_attention=needs_attention, alert_after=1)
    return broken_payload(account_id=1, account_name="Loja Azul", currency="BRL", health=health,
                          needs_attention=needs_attention, url="https://ads.example.com/",
                          locale=locale)


def test_english_is_as_before():
    english = payload()
    assert english["since"] == english["since_text"] == "2026-11-18 14:05 UTC"
    assert english["text"] == (
        "The Meta sync of account Loja Azul is broken since 2026-11-18 14:05 UTC: 3 syncs "
        "failed in a row, so its numbers are not fresh and its anomalies are not judged on new "
        "data. Last error: HTTP 500 from Meta")
    assert payload(runs=1)["text"].startswith(
        "The Meta sync of account Loja Azul is broken since 2026-11-18 14:05 UTC: 1 sync failed")
    assert english["what_to_do"].startswith("read the last error above")
    assert subject_of(english) == ("[SYNC BROKEN] Loja Azul: no fresh Meta data since "
                                   "2026-11-18 14:05 UTC")


def test_a_pt_br_account_reads_it_in_portuguese():
    told = payload("pt_BR")
    assert told["account"]["locale"] == "pt_BR"
    assert told["since"] == "2026-11-18 14:05 UTC"  # the machine value stays
    assert told["text"] == (
        "A sincronização da conta Loja Azul com a Meta está com falha desde 18/11/2026 14:05 UTC: "
        "3 sincronizações seguidas falharam, então seus números não estão atualizados e suas "
        "anomalias não são avaliadas com dados novos. Último erro: HTTP 500 from Meta")
    assert told["what_to_do"].startswith("leia o último erro acima")
    text = render_text(told)
    assert text.startswith("[SINCRONIZAÇÃO COM FALHA] Loja Azul: sem dados novos da Meta desde "
                           "18/11/2026 14:05 UTC")
    assert "broken" not in text and "What to do" not in text
    one = payload("pt_BR", runs=1, error=None)["text"]
    assert "1 sincronização falhou" in one and one.endswith("Último erro: nenhum registrado")


def test_a_persons_mark_is_the_syncs_own_words():
    mark = "Meta access token expired or invalid (code 190): create a new token"
    assert payload("pt_BR", needs_attention=mark)["what_to_do"] == mark
