"""The account's common move: what the other campaigns of an account did on a day.

When every campaign of an account moves together (a holiday, an auction-wide price rise), the
move is the market's, not any one campaign's. Each campaign, and everything below it, is
therefore judged against what *most of the other campaigns of its account* did the same day:
the median actual / expected ratio of each metric among them multiplies the entity's expected
value.

Three guards keep real incidents visible and one campaign from speaking for the market:

* a move is common only when a strict majority of the account's campaigns, each on today
  alone, moved the same way by more than chance would make that many of them move: with ``n``
  campaigns tested and ``k`` the strict majority, the ``k``-th strongest z in the direction,
  ``z_k``, must be unlikely for ``k`` independent quiet campaigns,
  ``P(Binomial(n, 1 - Phi(z_k)) >= k) <=`` :data:`COMMON_MOVE_ALPHA`. This is one test per
  account, metric, direction and day, so a common move is declared on a quiet day at a known
  rate; eight campaigns each a little up are as good evidence as two clearly up, and one
  campaign's own incident is one vote of ``n``;
* each campaign's factor is the median ratio of the *other* campaigns that moved that way
  (``z >=`` :data:`MOVED_Z` in the direction), at least :data:`MIN_OTHER_CAMPAIGNS` of them:
  a campaign's own move never explains itself, and one large campaign's own change (a new ad
  with three times the CTR, its own incident) moves a sum of campaigns, not their median;
* conversions (leads, conversion rate, CPL) follow the other campaigns only within
  :data:`CONVERSION_BAND` (x0.5 to x2): markets move demand by tens of percent, they do not
  zero conversions. A collapse beyond the band (a site outage that zeroes every conversion of
  the account) explains nothing, and each campaign is judged as if the rest were quiet, so it
  is still reported where it happens. Prices and delivery (CPM, CPC, CTR, spend, impressions)
  follow however far they moved: an auction-wide doubling of CPM is the market's.

Pure: tests in, factors out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from adsentinel.detect.statistical import MetricTest, pooled_days

#: How often a common move is declared, per metric and direction, on a day when the other
#: campaigns are quiet (their one-day z independent standard normals).
COMMON_MOVE_ALPHA = 1e-3
CONVERSION_BAND = (0.5, 2.0)
CONVERSION_METRICS = frozenset({"leads", "conversion_rate", "cpl"})
MIN_OTHER_CAMPAIGNS = 2
#: A campaign moved a metric a way when its one-day z is at least one standard error that way.
MOVED_Z = 1.0


def majority_move_p_value(z_scores: Sequence[float]) -> float:
    """How likely, with the campaigns quiet, a strict majority of them moves at least as far
    up as the weakest of the majority's strongest did: ``P(Binomial(n, 1 - Phi(z_k)) >= k)``
    with ``k`` the strict majority of the ``n`` z-scores and ``z_k`` the ``k``-th largest."""
    n = len(z_scores)
    if n == 0:
        return 1.0
    k = n // 2 + 1
    z_k = float(np.sort(np.asarray(z_scores, dtype=float))[::-1][k - 1])
    return float(stats.binom.sf(k - 1, n, stats.norm.sf(z_k)))


def common_moves(campaign_tests: Mapping[Hashable, Iterable[MetricTest]], *,
                 alpha: float = COMMON_MOVE_ALPHA, band: tuple[float, float] = CONVERSION_BAND,
                 min_campaigns: int = MIN_OTHER_CAMPAIGNS) -> dict[Hashable, dict[str, float]]:
    """Each campaign's factors: per metric, when the account made a majority move (see the
    module doc), the median actual/expected ratio of the *other* campaigns that moved that way,
    at least ``min_campaigns`` of them (conversion metrics only within ``band``).

    ``campaign_tests`` holds each campaign's one-day tests of the day, keyed by campaign.
    """
    moves: dict[str, dict[Hashable, tuple[float, float]]] = {}
    for campaign, tests in campaign_tests.items():
        for test in tests:
            if pooled_days(test.detector) > 1 or not (np.isfinite(test.actual)
                                                      and test.expected > 0
                                                      and np.isfinite(test.z)):
                continue  # a pool of several days says nothing about today alone
            moves.setdefault(test.metric, {})[campaign] = (
                float(test.z), float(test.actual / test.expected))
    factors: dict[Hashable, dict[str, float]] = {campaign: {} for campaign in campaign_tests}
    for metric, tested in moves.items():
        for sign in (1.0, -1.0):
            if majority_move_p_value([sign * z for z, _ in tested.values()]) > alpha:
                continue
            for campaign in campaign_tests:
                same_way = [ratio for other, (z, ratio) in tested.items()
                            if other != campaign and sign * z >= MOVED_Z]
                if len(same_way) < min_campaigns:
                    continue
                ratio = float(np.median(same_way))
                if metric not in CONVERSION_METRICS or band[0] <= ratio <= band[1]:
                    factors[campaign][metric] = ratio
            break
    return factors
