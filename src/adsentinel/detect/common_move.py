"""The account's common move: what the other campaigns of an account did on a day.

When every campaign of an account moves together (a holiday, an auction-wide price rise), the
move is the market's, not any one campaign's. Each campaign, and everything below it, is
therefore judged against what *most of the other campaigns of its account* did the same day:
the median actual / expected ratio of each metric among them multiplies the entity's expected
value.

Three guards keep real incidents visible and one campaign from speaking for the market:

* a move is common only when a strict majority of the other campaigns, at least
  :data:`MIN_OTHER_CAMPAIGNS`, moved the same way, each on today alone, by more than chance
  would make that many of them move: with ``n`` others tested and ``k`` the strict majority,
  the ``k``-th strongest z in the direction, ``z_k``, must be unlikely for ``k`` independent
  quiet campaigns, ``P(Binomial(n, 1 - Phi(z_k)) >= k) <=`` :data:`COMMON_MOVE_ALPHA`. So a
  common move is declared on a quiet day at a known rate, and more campaigns that each moved
  a little are as good evidence as two that moved clearly. The factor is the median ratio of
  the ``k`` or more campaigns at or beyond ``z_k``: one large campaign's own change (a new ad
  with three times the CTR, its own incident) moves a sum of campaigns, not their median, so it
  is not taken for the market;
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
from scipy import stats

from adsentinel.detect.statistical import MetricTest, pooled_days

#: How often a common move is declared, per metric and direction, on a day when the other
#: campaigns are quiet (their one-day z independent standard normals).
COMMON_MOVE_ALPHA = 1e-3
CONVERSION_BAND = (0.5, 2.0)
CONVERSION_METRICS = frozenset({"leads", "conversion_rate", "cpl"})
MIN_OTHER_CAMPAIGNS = 2


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


def common_factors(other_campaigns: Sequence[Iterable[MetricTest]], *,
                   alpha: float = COMMON_MOVE_ALPHA, band: tuple[float, float] = CONVERSION_BAND,
                   min_campaigns: int = MIN_OTHER_CAMPAIGNS) -> dict[str, float]:
    """Per metric, the median actual/expected ratio of the other campaigns that made a
    majority move (see the module doc; conversion metrics only within ``band``).

    ``other_campaigns`` holds each other campaign's one-day tests of the day.
    """
    moves: dict[str, list[tuple[float, float]]] = {}
    for tests in other_campaigns:
        for test in tests:
            if pooled_days(test.detector) > 1 or not (np.isfinite(test.actual)
                                                      and test.expected > 0
                                                      and np.isfinite(test.z)):
                continue  # a pool of several days says nothing about today alone
            moves.setdefault(test.metric, []).append(
                (float(test.z), float(test.actual / test.expected)))
    factors: dict[str, float] = {}
    for metric, tested in moves.items():
        if len(tested) < min_campaigns:
            continue
        for sign in (1.0, -1.0):
            z_scores = [sign * z for z, _ in tested]
            if majority_move_p_value(z_scores) > alpha:
                continue
            k = len(tested) // 2 + 1
            z_k = sorted(z_scores, reverse=True)[k - 1]
            ratio = float(np.median([r for (_, r), signed in zip(tested, z_scores, strict=True)
                                     if signed >= z_k]))
            if metric not in CONVERSION_METRICS or band[0] <= ratio <= band[1]:
                factors[metric] = ratio
            break
    return factors


def common_moves(campaign_tests: Mapping[Hashable, list[MetricTest]],
                 **options) -> dict[Hashable, dict[str, float]]:
    """Each campaign's factors (:func:`common_factors`) from the one-day tests of the *other*
    campaigns of its account, ``campaign_tests`` keyed by campaign."""
    return {key: common_factors([tests for other, tests in campaign_tests.items()
                                 if other != key], **options)
            for key in campaign_tests}
