"""Issue 17 items 10 and 11 on the Meta sync's side: days outside 1970..today and control
characters in names are refused in the payload, naming the object, field and value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from graph_api import payload

from adsentinel.sync.errors import SyncPayloadError
from adsentinel.sync.payloads import parse_account, parse_ad, parse_campaign, parse_insight


def _insight(**changes) -> dict:
    row = dict(payload("insights_page1")["data"][0])
    row.update(changes)
    return row


@pytest.mark.parametrize("day", ["0001-01-01", "1969-12-31", "9999-12-31",
                                 (datetime.now(UTC) + timedelta(days=2)).date().isoformat()])
def test_a_day_outside_1970_to_today_is_refused(day):
    with pytest.raises(SyncPayloadError) as error:
        parse_insight(_insight(date_start=day, date_stop=day), result_action_types=("lead",))
    assert f"field 'date_start' is '{day}', expected a day from 1970-01-01 to today" in \
        error.value.message


def test_the_first_day_and_today_are_accepted():
    for day in (date(1970, 1, 1), datetime.now(UTC).date()):
        row = parse_insight(_insight(date_start=day.isoformat(), date_stop=day.isoformat()),
                            result_action_types=("lead",))
        assert row.day == day


@pytest.mark.parametrize("name", ["Promo\nSubject: urgent", "Promo\r", "Pro\x00mo", "Promo\x85",
                                  "Promo\t2"])
def test_control_characters_in_names_are_refused(name):
    with pytest.raises(SyncPayloadError, match="expected one line of text without control"):
        parse_insight(_insight(ad_name=name), result_action_types=("lead",))
    with pytest.raises(SyncPayloadError, match=r"campaign .*field 'name'"):
        parse_campaign({**payload("campaigns")["data"][0], "name": name})
    with pytest.raises(SyncPayloadError, match="field 'name'"):
        parse_ad({**payload("ads_page2")["data"][0], "name": name})
    with pytest.raises(SyncPayloadError, match="ad account: field 'name'"):
        parse_account({"id": "act_1", "name": name, "currency": "BRL",
                       "timezone_name": "America/Sao_Paulo"})


def test_printable_unicode_names_are_kept():
    row = parse_insight(_insight(ad_name="Promoção — verão 🌞"), result_action_types=("lead",))
    assert row.ad_name == "Promoção — verão 🌞"
