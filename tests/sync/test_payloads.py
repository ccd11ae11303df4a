"""Graph API objects to rows: leads from actions, and errors that say which ad, field and value."""

from __future__ import annotations

from datetime import date

import pytest
from graph_api import payload

from adsentinel.errors import ConfigError
from adsentinel.sync.errors import SyncPayloadError
from adsentinel.sync.payloads import (
    leads_from_actions,
    parse_account,
    parse_ad,
    parse_adset,
    parse_campaign,
    parse_insight,
    parse_result_action_types,
)

LEAD = ("lead",)


def first_insight(**changes) -> dict:
    row = dict(payload("insights_page1")["data"][0])
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


def test_lead_counts_once_even_when_its_components_are_reported():
    row = parse_insight(first_insight(), result_action_types=LEAD)
    assert row.leads == 11
    assert (row.day, row.spend, row.impressions, row.clicks, row.reach) == (
        date(2026, 11, 24), 152.37, 18234, 298, 12007)  # link clicks


def test_configured_result_types_are_summed():
    actions = [{"action_type": "offsite_conversion.fb_pixel_lead", "value": "4"},
               {"action_type": "onsite_conversion.lead_grouped", "value": "3"},
               {"action_type": "link_click", "value": "96"}]
    types = parse_result_action_types("offsite_conversion.fb_pixel_lead, "
                                      "onsite_conversion.lead_grouped")
    assert leads_from_actions(actions, types) == 7
    assert leads_from_actions(None, LEAD) == 0


@pytest.mark.parametrize("text", ["lead,onsite_conversion.lead_grouped",
                                  "offsite_conversion.fb_pixel_lead, lead"])
def test_lead_next_to_its_components_is_refused(text):
    with pytest.raises(ConfigError, match="count leads twice"):
        parse_result_action_types(text)


def test_empty_result_types_are_refused():
    with pytest.raises(ConfigError, match="empty"):
        parse_result_action_types(" , ")


@pytest.mark.parametrize(("changes", "message"), [
    ({"spend": "98,10"}, "field 'spend' is '98,10', expected a non-negative number"),
    ({"impressions": "-3"}, "field 'impressions' is '-3', expected a non-negative whole number"),
    ({"impressions": None}, "field 'impressions' is None"),
    ({"date_stop": "2026-11-25"}, "one row per day (time_increment=1)"),
    ({"date_start": "24/11/2026"}, "field 'date_start' is '24/11/2026', expected a date"),
    ({"ad_id": "abc"}, "insights row: field 'ad_id' is 'abc', expected a numeric Meta id"),
    ({"reach": "99999"}, "field 'reach' is 99999, expected at most the impressions (18234)"),
    ({"actions": [{"action_type": "lead", "value": "eleven"}]},
     "field 'actions[0].value (lead)' is 'eleven'"),
    ({"actions": "lead"}, "field 'actions' is 'lead', expected a list"),
])
def test_malformed_rows_name_the_ad_field_and_value(changes, message):
    with pytest.raises(SyncPayloadError) as error:
        parse_insight(first_insight(**changes), result_action_types=LEAD)
    assert message in error.value.message
    if "ad_id" not in changes:
        assert "ad 120210000000000301" in error.value.message


def test_missing_reach_is_recovered_from_frequency():
    row = parse_insight(first_insight(reach=None), result_action_types=LEAD)
    assert row.reach == round(18234 / 1.518614)


def test_structure_records_carry_status_and_parent():
    campaign = parse_campaign(payload("campaigns")["data"][1])
    adset = parse_adset(payload("adsets")["data"][2])
    ad = parse_ad(payload("ads_page2")["data"][1])
    assert (campaign.status, campaign.parent_platform_id) == ("PAUSED", None)
    assert (adset.status, adset.parent_platform_id) == ("CAMPAIGN_PAUSED", "120210000000000102")
    assert (ad.level, ad.parent_platform_id) == ("ad", "120210000000000203")
    with pytest.raises(SyncPayloadError, match="ad set 120210000000000201: field 'campaign_id'"):
        parse_adset({"id": "120210000000000201", "status": "ACTIVE"})


def test_account_description():
    info = parse_account(payload("account"))
    assert (info.platform_account_id, info.currency, info.timezone) == (
        "act_1234567890", "BRL", "America/Sao_Paulo")
    with pytest.raises(SyncPayloadError, match="field 'currency' is 'R\\$'"):
        parse_account({**payload("account"), "currency": "R$"})


def test_an_item_that_is_not_an_object_is_refused():
    with pytest.raises(SyncPayloadError, match="malformed ad: field 'data\\[\\]' is 'oops'"):
        parse_ad("oops")
