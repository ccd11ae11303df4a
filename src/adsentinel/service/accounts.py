"""Finding the accounts a command is about."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.models import AdAccount
from adsentinel.errors import NotFoundError


@dataclass(frozen=True)
class AccountRef:
    """The few fields of an account that commands print or pass on."""

    id: int
    name: str
    currency: str


def select_accounts(*, session_factory: sessionmaker[Session],
                    wanted: str | None) -> list[AccountRef]:
    """Every active account (``wanted`` is ``None``), or the one named, with that platform id or
    numeric id. Raises :class:`NotFoundError` when there is none."""
    with session_factory() as session:
        query = select(AdAccount.id, AdAccount.name, AdAccount.currency).order_by(AdAccount.id)
        if wanted is None:
            rows = session.execute(query.where(AdAccount.is_active.is_(True))).all()
            if not rows:
                raise NotFoundError("there is no active ad account",
                                    hint="import insights first with `adsentinel import`")
            return [AccountRef(r.id, r.name, r.currency) for r in rows]
        match = [AdAccount.name == wanted, AdAccount.platform_account_id == wanted]
        if wanted.isdigit():
            match.append(AdAccount.id == int(wanted))
        rows = session.execute(query.where(or_(*match))).all()
    if not rows:
        raise NotFoundError(f"no ad account named or numbered {wanted!r}",
                            hint="pass an account's name, platform id or numeric id")
    exact = [r for r in rows if r.name == wanted]
    chosen = exact[0] if exact else rows[0]
    return [AccountRef(chosen.id, chosen.name, chosen.currency)]


def set_account_locale(*, session_factory: sessionmaker[Session], wanted: str,
                       locale: str | None) -> AccountRef:
    """Set the language of an account's alerts and report (``None``: back to the ``locale``
    setting); ``locale`` is any spelling :func:`adsentinel.i18n.parse_locale` takes. Raises
    :class:`NotFoundError` for an unknown account, ``ValueError`` for an unknown language."""
    from adsentinel.i18n import parse_locale
    from adsentinel.service.sync import find_account

    stored = parse_locale(locale) if locale is not None else None
    with session_factory() as session, session.begin():
        account = find_account(session, wanted)
        account.locale = stored
        return AccountRef(account.id, account.name, account.currency)
