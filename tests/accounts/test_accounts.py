"""Every command finds an account by the same rule: name, Meta id with or without act_, id."""

from __future__ import annotations

import pytest

from adsentinel.accounts.service import find_account, select_accounts
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount
from adsentinel.errors import NotFoundError


@pytest.fixture
def accounts(session_factory):
    with session_scope(session_factory) as session:
        session.add_all([
            AdAccount(name="Clinica Sorriso", platform_account_id="act_1234567", currency="BRL"),
            AdAccount(name="Loja", platform_account_id="7654321", currency="BRL"),  # CSV-style
        ])
    return session_factory


@pytest.mark.parametrize("wanted, name", [
    ("Clinica Sorriso", "Clinica Sorriso"), ("act_1234567", "Clinica Sorriso"),
    ("1234567", "Clinica Sorriso"), ("7654321", "Loja"), ("act_7654321", "Loja"),
    ("2", "Loja"),
])
def test_an_account_is_found_by_name_meta_id_with_or_without_act_or_id(accounts, wanted, name):
    with accounts() as session:
        assert find_account(session, wanted).name == name
    assert [ref.name for ref in select_accounts(session_factory=accounts, wanted=wanted)] == [name]


def test_an_unknown_account_says_how_to_find_one(accounts):
    with pytest.raises(NotFoundError, match="act_999") as raised:
        select_accounts(session_factory=accounts, wanted="act_999")
    assert "accounts list" in raised.value.hint
