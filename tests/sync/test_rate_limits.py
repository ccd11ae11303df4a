"""Usage headers, error classes and the backoff policy: pure functions, no I/O."""

from __future__ import annotations

import json
import random

import pytest
from graph_api import payload

from adsentinel.sync.errors import scrub_secrets
from adsentinel.sync.rate_limits import (
    BackoffPolicy,
    ErrorKind,
    UsageReading,
    classify_error,
    pacing_delay,
    read_usage,
    usage_by_budget,
)


def test_usage_is_the_most_used_budget_of_every_header():
    quiet = read_usage(payload("headers_quiet"))
    assert quiet.percent == 3 and quiet.regain_seconds == 0
    busy = read_usage(payload("headers_busy"))
    assert busy.percent == 91 and "ads_management" in busy.budget
    throttled = read_usage(payload("headers_throttled"))
    assert throttled.percent == 100 and throttled.regain_seconds == 120  # 2 minutes


def test_header_names_are_case_insensitive_and_bad_json_is_ignored(caplog):
    reading = read_usage({"X-AD-ACCOUNT-USAGE": '{"acc_id_util_pct": 80.5}',
                          "x-app-usage": "not json"})
    assert reading.percent == 80.5
    assert "not JSON" in caplog.text
    assert read_usage(None) == UsageReading()


def test_usage_by_budget_names_each_budget_without_ids():
    headers = {
        "X-Business-Use-Case-Usage": json.dumps({
            "111": [{"type": "ads_insights", "call_count": 5, "total_cputime": 30,
                     "total_time": 7}, "not an entry"],
            "222": [{"type": "ADS_INSIGHTS", "call_count": 45}, {"call_count": 2}]}),
        "x-ad-account-usage": '{"acc_id_util_pct": "12.5"}',
        "X-FB-Ads-Insights-Throttle": '{"app_id_util_pct": 3, "acc_id_util_pct": true}',
        "X-App-Usage": "not json",
    }
    assert usage_by_budget(headers) == {"business_use_case_ads_insights": 45.0,
                                        "business_use_case_other": 2.0, "ad_account": 12.5,
                                        "insights_app": 3.0}
    assert usage_by_budget(None) == {} and usage_by_budget({"Content-Type": "json"}) == {}


def test_pacing_starts_at_the_slowdown_point_and_grows_to_the_maximum():
    assert pacing_delay(UsageReading(74.9), slowdown_percent=75) == 0
    assert pacing_delay(UsageReading(75), slowdown_percent=75) == 0
    assert pacing_delay(UsageReading(87.5), slowdown_percent=75) == pytest.approx(30)
    assert pacing_delay(UsageReading(100), slowdown_percent=75) == 60
    assert pacing_delay(UsageReading(100, regain_seconds=300), slowdown_percent=75) == 300


@pytest.mark.parametrize(("code", "status", "kind"), [
    (4, 400, ErrorKind.throttled), (17, 400, ErrorKind.throttled), (613, 400, ErrorKind.throttled),
    (80000, 400, ErrorKind.throttled), (80004, 400, ErrorKind.throttled),
    (190, 400, ErrorKind.auth), (200, 403, ErrorKind.auth), (10, 403, ErrorKind.auth),
    (1, 500, ErrorKind.transient), (2, 503, ErrorKind.transient), (None, 502, ErrorKind.transient),
    (100, 400, ErrorKind.permanent), (None, 404, ErrorKind.permanent),
])
def test_errors_are_classified_by_code(code, status, kind):
    assert classify_error(code=code, http_status=status) is kind


def test_backoff_is_exponential_capped_jittered_and_floored_by_metas_estimate():
    policy = BackoffPolicy(base_seconds=2, cap_seconds=60)
    rng = random.Random(1)
    delays = [policy.delay(n, rng=rng) for n in range(8)]
    for n, delay in enumerate(delays):
        step = min(60, 2 * 2 ** n)
        assert step <= delay <= step * 1.5
    assert policy.delay(0, at_least=120, rng=rng) >= 120
    with pytest.raises(ValueError, match="base_seconds"):
        BackoffPolicy(base_seconds=0)


def test_tokens_are_scrubbed_from_any_text():
    token = "EAAGm0PX4ZCpsBAKZBsecret"
    text = (f"GET https://graph.facebook.com/v26.0/act_1/ads?access_token={token}&limit=25 "
            f"failed; params {{'access_token': '{token}'}} appsecret_proof=abcdef0123")
    scrubbed = scrub_secrets(text, [token])
    assert token not in scrubbed and "abcdef0123" not in scrubbed
    assert "act_1/ads?access_token=***&limit=25" in scrubbed
    assert scrub_secrets("no secrets here") == "no secrets here"
