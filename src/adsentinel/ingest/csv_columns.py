"""Which CSV headers mean what: the canonical import format and Meta Ads Manager exports.

Headers are matched case- and space-insensitively. A Meta export's "Amount spent (BRL)" also tells
the account currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adsentinel.errors import InputProblem

#: canonical field -> accepted headers (normalised: lower case, single spaces), first match wins
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "reporting starts", "date start", "date_start"),
    "account_id": ("account_id", "account id"),
    "account_name": ("account_name", "account name"),
    "currency": ("currency",),
    "campaign_id": ("campaign_id", "campaign id"),
    "campaign_name": ("campaign_name", "campaign name"),
    "adset_id": ("adset_id", "ad set id", "adset id"),
    "adset_name": ("adset_name", "ad set name", "adset name"),
    "ad_id": ("ad_id", "ad id"),
    "ad_name": ("ad_name", "ad name"),
    "spend": ("spend", "amount spent"),
    "impressions": ("impressions",),
    "clicks": ("clicks", "link clicks", "clicks (all)"),
    "leads": ("leads", "results"),
    "reach": ("reach",),
    "conversions": ("conversions",),
    "revenue": ("revenue", "purchases conversion value"),
}
REQUIRED = ("date", "campaign_id", "adset_id", "ad_id", "spend", "impressions", "clicks", "leads",
            "reach")
COUNT_FIELDS = ("impressions", "clicks", "leads", "reach")

_SPEND_WITH_CURRENCY = re.compile(r"^amount spent \(([a-z]{3})\)$")


def normalise_header(header: str) -> str:
    """``' Amount  Spent (BRL) '`` -> ``'amount spent (brl)'``."""
    return " ".join(header.strip().lower().split())


@dataclass(frozen=True)
class ColumnLayout:
    """Where each canonical field sits in the file's rows (``None`` = absent)."""

    index: dict[str, int]
    currency_from_header: str | None

    def position(self, field: str) -> int | None:
        return self.index.get(field)


def resolve_columns(headers: list[str], file: str) -> tuple[ColumnLayout, list[InputProblem]]:
    """Map a header row onto the canonical fields; report missing or ambiguous columns."""
    normalised = [normalise_header(h) for h in headers]
    problems: list[InputProblem] = []
    index: dict[str, int] = {}
    currency = None
    for position, name in enumerate(normalised):
        match = _SPEND_WITH_CURRENCY.match(name)
        if match:
            currency = match.group(1).upper()
            normalised[position] = "amount spent"
    for field, accepted in ALIASES.items():
        for alias in accepted:
            if alias in normalised:
                index[field] = normalised.index(alias)
                break
    seen: dict[str, int] = {}
    for position, name in enumerate(normalised):
        if name and name in seen:
            problems.append(InputProblem(file, 1, headers[position],
                                         f"column appears twice (columns {seen[name] + 1} and "
                                         f"{position + 1})"))
        seen[name] = position
    for field in REQUIRED:
        if field not in index:
            accepted = ", ".join(repr(a) for a in ALIASES[field])
            problems.append(InputProblem(file, 1, field,
                                         f"missing column {field!r} (accepted headers: {accepted})"))
    return ColumnLayout(index=index, currency_from_header=currency), problems
