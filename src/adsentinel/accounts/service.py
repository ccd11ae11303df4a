"""Ad accounts' service: finding the accounts a command is about (one rule for every command),
and setting an account's language."""

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


def find_account(session: Session, wanted: str) -> AdAccount:
    """The account ``wanted`` names: its name, its Meta id with or without ``act_``, or its
    numeric id (a name that matches exactly wins). The one rule every command resolves an
    account by; raises :class:`NotFoundError` when there is none."""
    bare = wanted.removeprefix("act_")
    match = [AdAccount.name == wanted, AdAccount.platform_account_id == wanted]
    if bare.isdigit():
        match += [AdAccount.platform_account_id == bare,
                  AdAccount.platform_account_id == f"act_{bare}"]
    if wanted.isdigit():
        match.append(AdAccount.id == int(wanted))
    found = session.scalars(select(AdAccount).where(or_(*match)).order_by(AdAccount.id)).all()
    if not found:
        raise NotFoundError(f"no ad account named or numbered {wanted!r}",
                            hint="pass an account's name, Meta id or numeric id; "
                                 "`adsentinel accounts list` shows them")
    exact = [a for a in found if a.name == wanted]
    return exact[0] if exact else found[0]


def select_accounts(*, session_factory: sessionmaker[Session],
                    wanted: str | None) -> list[AccountRef]:
    """Every active account (``wanted`` is ``None``), or the one :func:`find_account` finds.
    Raises :class:`NotFoundError` when there is none."""
    with session_factory() as session:
        if wanted is not None:
            account = find_account(session, wanted)
            return [AccountRef(account.id, account.name, account.currency)]
        rows = session.execute(
            select(AdAccount.id, AdAccount.name, AdAccount.currency)
            .where(AdAccount.is_active.is_(True)).order_by(AdAccount.id)).all()
    if not rows:
        raise NotFoundError("there is no active ad account",
                            hint="import insights first with `adsentinel import`")
    return [AccountRef(r.id, r.name, r.currency) for r in rows]


def set_account_locale(*, session_factory: sessionmaker[Session], wanted: str,
                       locale: str | None) -> AccountRef:
    """Set the language of an account's alerts and report (``None``: back to the ``locale``
    setting); ``locale`` is any spelling :func:`adsentinel.i18n.parse_locale` takes. Raises
    :class:`NotFoundError` for an unknown account, ``ValueError`` for an unknown language."""
    from adsentinel.i18n import parse_locale

    stored = parse_locale(locale) if locale is not None else None
    with session_factory() as session, session.begin():
        account = find_account(session, wanted)
        account.locale = stored
        return AccountRef(account.id, account.name, account.currency)
