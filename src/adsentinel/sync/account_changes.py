"""Currency and timezone changes of an ad account: recorded when Meta reports another value than
the one stored, and the day from which the account's history compares.

Amounts in another currency, or days cut at another midnight, do not compare with the ones
after the change: detection and training read an account's history from its latest change day
on (:func:`comparable_since`), and ``adsentinel accounts list`` / ``status`` show the changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adsentinel.db.models import AccountSettingChange, AdAccount
from adsentinel.timezones import zone_or_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingChange:
    """One change as shown: which setting, from what to what, from which day on."""

    setting: str
    old_value: str
    new_value: str
    changed_on: date

    def describe(self) -> str:
        """``currency EUR -> BRL from 2026-11-25``."""
        return f"{self.setting} {self.old_value} -> {self.new_value} from {self.changed_on}"

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return {"setting": self.setting, "from": self.old_value, "to": self.new_value,
                "changed_on": self.changed_on.isoformat()}


def apply_account_settings(session: Session, account: AdAccount, *, currency: str,
                           timezone: str, now: datetime) -> list[SettingChange]:
    """Store the currency and timezone Meta reports; for an account synced before, each one
    that differs from the stored value is recorded as changed from today (in the new timezone),
    the first day known to be in the new setting. Returns the changes recorded."""
    changes: list[SettingChange] = []
    if account.last_synced_at is not None:
        today = now.astimezone(zone_or_utc(timezone)).date()
        for setting, before, after in (("currency", account.currency, currency),
                                       ("timezone", account.timezone, timezone)):
            if before and before != after:
                changes.append(SettingChange(setting, before, after, today))
                session.add(AccountSettingChange(account_id=account.id, setting=setting,
                                                 old_value=before, new_value=after,
                                                 changed_on=today, noticed_at=now))
                log.warning("account %r: %s changed from %s to %s; its history before %s is "
                            "kept but no longer compared", account.name, setting, before,
                            after, today)
    account.currency, account.timezone = currency, timezone
    return changes


def comparable_since(session: Session, account_id: int, last_day: date) -> date | None:
    """The latest change day of the account on or before ``last_day``: history read to judge
    or learn ``last_day`` starts there (``None``: no change, the whole history compares)."""
    return session.scalar(select(func.max(AccountSettingChange.changed_on)).where(
        AccountSettingChange.account_id == account_id,
        AccountSettingChange.changed_on <= last_day))


def setting_changes(session: Session,
                    account_ids: Iterable[int]) -> dict[int, list[SettingChange]]:
    """Every recorded change of the given accounts, oldest first."""
    ids = list(account_ids)
    found: dict[int, list[SettingChange]] = {account_id: [] for account_id in ids}
    if not ids:
        return found
    rows = session.execute(
        select(AccountSettingChange.account_id, AccountSettingChange.setting,
               AccountSettingChange.old_value, AccountSettingChange.new_value,
               AccountSettingChange.changed_on)
        .where(AccountSettingChange.account_id.in_(ids))
        .order_by(AccountSettingChange.changed_on, AccountSettingChange.id))
    for account_id, setting, old_value, new_value, changed_on in rows:
        found[account_id].append(SettingChange(setting, old_value, new_value, changed_on))
    return found
