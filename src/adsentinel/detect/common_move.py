"""The account's common move: what the other campaigns of an account did on a day.

When every campaign of an account moves together (a holiday, an auction-wide price rise), the
move is the market's, not any one campaign's. Each campaign, and everything below it, is
therefore judged against what *most of the other campaigns of its account* did the same day:
the median actual / expected ratio of each metric among them multiplies the entity's expected
value.

Three guards keep real incidents visible and one campaign from speaking for the market:

* only clear moves count (``|z| >=`` :data:`COMMON_MOVE_Z`, each campaign on today alone), and
  only when a strict majority of the other campaigns, at least :data:`MIN_OTHER_CAMPAIGNS`,
  moved the same way: one large campaign's own change (a new ad with three times the CTR, its
  own incident) moves a sum of campaigns, not their median, so it is not taken for the market;
* conversions (leads, conversion rate, CPL) follow the other campaigns only within
  :data:`CONVERSION_BAND` (x0.5 to x2): markets move demand by tens of percent, they do not
  zero conversions. A collapse beyond the band (a site outage that zeroes every conversion of
  the account) explains nothing, and each campaign is judged as if the rest were quiet, so it
  is still reported where it happens. Prices and delivery (CPM, CPC, CTR, spend, impressions)
  follow however far they moved: an auction-wide doubling of CPM is the market's;
* a campaign's own move never explains itself: its factor comes from the others only.

Pure: tests in, factors out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

from adsentinel.detect.statistical import MetricTest, pooled_days

COMMON_MOVE_Z = 2.0
CONVERSION_BAND = (0.5, 2.0)
CONVERSION_METRICS = frozenset({"leads", "conversion_rate", "cpl"})
MIN_OTHER_CAMPAIGNS = 2


def common_factors(other_campaigns: Sequence[Iterable[MetricTest]], *,
                   min_z: float = COMMON_MOVE_Z, band: tuple[float, float] = CONVERSION_BAND,
                   min_campaigns: int = MIN_OTHER_CAMPAIGNS) -> dict[str, float]:
    """Per metric, the median actual/expected ratio of the other campaigns that moved clearly,
    when they are a strict majority of those tested and at least ``min_campaigns`` (conversion
    metrics only within ``band``).

    ``other_campaigns`` holds each other campaign's one-day tests of the day.
    """
    tested: dict[str, int] = {}
    moved: dict[str, list[float]] = {}
    for tests in other_campaigns:
        for test in tests:
            if pooled_days(test.detector) > 1 or not (np.isfinite(test.actual)
                                                      and test.expected > 0):
                continue  # a pool of several days says nothing about today alone
            tested[test.metric] = tested.get(test.metric, 0) + 1
            if abs(test.z) >= min_z:
                moved.setdefault(test.metric, []).append(
                    float(np.sign(test.z)) * float(test.actual / test.expected))
    factors: dict[str, float] = {}
    for metric, signed in moved.items():
        ups = [r for r in signed if r > 0]
        downs = [-r for r in signed if r < 0]
        same = ups if len(ups) >= len(downs) else downs
        if len(same) < min_campaigns or 2 * len(same) <= tested[metric]:
            continue
        ratio = float(np.median(same))
        if metric not in CONVERSION_METRICS or band[0] <= ratio <= band[1]:
            factors[metric] = ratio
    return factors


def common_moves(campaign_tests: Mapping[Hashable, list[MetricTest]],
                 **options) -> dict[Hashable, dict[str, float]]:
    """Each campaign's factors (:func:`common_factors`) from the one-day tests of the *other*
    campaigns of its account, ``campaign_tests`` keyed by campaign."""
    return {key: common_factors([tests for other, tests in campaign_tests.items()
                                 if other != key], **options)
            for key in campaign_tests}
