"""What share of a day's delivery is expected by a given local hour.

Meta delivery is not uniform over the day: little at night, a ramp in the morning, a peak in the
evening. Comparing today's partial numbers with a whole day's expectation would report a "drop"
every morning. :func:`expected_day_fraction` scales the expectation to the hour instead.

The default profile (:data:`DEFAULT_INTRADAY_PROFILE`) is a documented, deliberately smooth
assumption for lead-generation accounts in one timezone: hourly shares of a day's impressions,
about 1.5 % an hour from 00:00 to 06:00, rising through the morning, flat in the afternoon and
peaking between 19:00 and 22:00. An account's own profile (24 non-negative weights, in its local
time) can be passed instead.
"""

from __future__ import annotations

import numpy as np

#: Relative delivery per local hour 0..23 (normalised to sum to 1 on use).
DEFAULT_INTRADAY_PROFILE: tuple[float, ...] = (
    1.6, 1.2, 1.0, 0.9, 1.0, 1.4,  # 00-05
    2.4, 3.6, 4.6, 5.0, 5.2, 5.2,  # 06-11
    5.2, 5.1, 5.0, 5.0, 5.1, 5.4,  # 12-17
    5.9, 6.4, 6.6, 6.3, 5.0, 3.5,  # 18-23
)  # fmt: skip

#: Below this share of the day, volume *drops* are not judged at all (too early to tell).
MIN_FRACTION_FOR_DROPS = 0.3


def expected_day_fraction(
    local_hour: float, profile: tuple[float, ...] | np.ndarray = DEFAULT_INTRADAY_PROFILE
) -> float:
    """Expected share (0-1) of the day's delivery completed by ``local_hour`` (0-24, fractional).

    Linear within the current hour. ``profile`` has shape ``(24,)`` and non-negative entries.
    """
    weights = np.asarray(profile, dtype=float)
    if weights.shape != (24,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"profile must be 24 non-negative weights with a positive sum, got {profile!r}")
    if not 0.0 <= local_hour <= 24.0:
        raise ValueError(f"local_hour must be in [0, 24], got {local_hour!r}")
    shares = weights / weights.sum()
    whole = int(min(local_hour, 23.999))
    done = shares[:whole].sum() + shares[whole] * (local_hour - whole)
    return float(min(done, 1.0))
