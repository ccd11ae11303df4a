"""The account's common move: what the rest of an account did on a day.

When every campaign of an account moves together (a holiday, an auction-wide price rise), the
move is the market's, not any one campaign's. Each campaign, and everything below it, is
therefore judged against what *the rest of its account* did the same day: the rest's
actual / expected ratio of each metric multiplies the entity's expected value.

Two guards keep real incidents visible:

* only a move that is itself clear evidence (``|z| >=`` :data:`COMMON_MOVE_Z` on the rest of the
  account) counts; a quiet day leaves every factor at 1 (no noise is added);
* conversions (leads, conversion rate, CPL) follow the rest of the account only within
  :data:`CONVERSION_BAND` (x0.5 to x2): markets move demand by tens of percent, they do not
  zero conversions. A collapse beyond the band (a site outage that zeroes every conversion of
  the account) explains nothing, and each campaign is judged as if the rest were quiet, so it
  is still reported where it happens. Prices and delivery (CPM, CPC, CTR, spend, impressions)
  follow the rest of the account however far it moved: an auction-wide doubling of CPM is the
  market's, not each ad's.

The rest of the account excludes the judged entity's own campaign, so that a campaign's own
incident cannot explain itself away, however large the campaign; and it needs at least
:data:`MIN_OTHER_CAMPAIGNS` other campaigns, so that one other campaign's own incident is not
taken for the market.

Pure: frames and tests in, factors out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd

from adsentinel.detect.features import COUNT_COLUMNS
from adsentinel.detect.statistical import MetricTest, pooled_days

COMMON_MOVE_Z = 2.0
CONVERSION_BAND = (0.5, 2.0)
CONVERSION_METRICS = frozenset({"leads", "conversion_rate", "cpl"})
MIN_OTHER_CAMPAIGNS = 2


def common_factors(tests: Iterable[MetricTest], *, min_z: float = COMMON_MOVE_Z,
                   band: tuple[float, float] = CONVERSION_BAND) -> dict[str, float]:
    """Per metric, the actual/expected ratio of the tests that moved clearly (conversion
    metrics only within ``band``)."""
    factors: dict[str, float] = {}
    for test in tests:
        if abs(test.z) < min_z or not (np.isfinite(test.actual) and test.expected > 0):
            continue
        if pooled_days(test.detector) > 1:
            continue  # a pool of several days says nothing about today alone (the account's
            # tests are run on today alone: see AnomalyDetector.common_move_on)
        ratio = float(test.actual / test.expected)
        if test.metric not in CONVERSION_METRICS or band[0] <= ratio <= band[1]:
            factors[test.metric] = ratio
    return factors


def rest_of_account_frames(campaign_frames: Mapping[Hashable, pd.DataFrame]
                           ) -> dict[Hashable, pd.DataFrame]:
    """For each campaign, the daily sums of all the *other* campaigns of its account.

    ``campaign_frames`` are prepared daily frames (``date`` and the count columns, one row per
    day, possibly over different ranges). Campaigns of an account with fewer than
    :data:`MIN_OTHER_CAMPAIGNS` others get no entry.
    """
    if len(campaign_frames) < MIN_OTHER_CAMPAIGNS + 1:
        return {}
    indexed = {key: frame.set_index("date")[list(COUNT_COLUMNS)]
               for key, frame in campaign_frames.items()}
    calendar = pd.DatetimeIndex(sorted(set().union(*(f.index for f in indexed.values()))))
    aligned = {key: f.reindex(calendar, fill_value=0.0) for key, f in indexed.items()}
    total = sum(aligned.values())
    rest: dict[Hashable, pd.DataFrame] = {}
    for key, frame in aligned.items():
        others = (total - frame).clip(lower=0.0)
        others.index.name = "date"
        rest[key] = others.reset_index()
    return rest
