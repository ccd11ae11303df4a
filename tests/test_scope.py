"""Splitting accounts into chunks of whole campaigns."""

from __future__ import annotations

from adsentinel.scope import campaign_of, entities_in_campaigns

#  campaigns 1, 2; ad sets 10 (of 1), 20 (of 2); ads 100, 101 (of 10), 200 (of 20)
PARENTS = {1: None, 2: None, 10: 1, 20: 2, 100: 10, 101: 10, 200: 20}


def test_campaign_of_walks_to_the_top():
    assert [campaign_of(e, PARENTS) for e in (1, 10, 101, 200)] == [1, 1, 1, 2]


def test_entities_in_campaigns_takes_whole_branches():
    assert entities_in_campaigns(PARENTS, [1]) == {1, 10, 100, 101}
    assert entities_in_campaigns(PARENTS, [2]) == {2, 20, 200}
    assert entities_in_campaigns(PARENTS, []) == set()


def test_campaign_chunks_never_split_a_campaign(session_factory):
    from sqlalchemy import select

    from adsentinel.db.engine import session_scope
    from adsentinel.db.models import AdAccount, Entity
    from adsentinel.scope import campaign_chunks

    with session_scope(session_factory) as session:
        account = AdAccount(name="big")
        session.add(account)
        for c in range(5):
            campaign = Entity(account=account, level="campaign", platform_id=f"c{c}")
            adset = Entity(account=account, level="adset", platform_id=f"s{c}", parent=campaign)
            session.add_all([campaign, adset] + [
                Entity(account=account, level="ad", platform_id=f"a{c}-{k}", parent=adset)
                for k in range(3)])
        session.flush()
        account_id = account.id
    assert campaign_chunks(session_factory=session_factory, account_id=account_id,
                           max_entities=100) == [None]
    chunks = campaign_chunks(session_factory=session_factory, account_id=account_id,
                             max_entities=10)
    with session_factory() as session:
        campaigns = set(session.scalars(select(Entity.id).where(Entity.level == "campaign")))
    flat = [c for chunk in chunks for c in chunk]
    assert sorted(flat) == sorted(campaigns)  # every campaign exactly once
    assert all(len(chunk) * 5 <= 10 for chunk in chunks)  # 5 entities per campaign


def test_entities_under_campaigns_reads_the_same_branches_from_the_database(session_factory):
    """A chunk's entities read level by level down from its campaigns (a campaign without ad
    sets, an ad directly under a campaign, another account's campaign asked for) are the
    branches the whole account's tree gives."""
    from adsentinel.db.engine import session_scope
    from adsentinel.db.models import AdAccount, Entity
    from adsentinel.scope import entities_under_campaigns, entity_parents

    with session_scope(session_factory) as session:
        account, other = AdAccount(name="big"), AdAccount(name="other")
        session.add_all([account, other])
        campaigns = [Entity(account=account, level="campaign", platform_id=f"c{c}")
                     for c in range(4)]
        session.add_all(campaigns)
        for c, campaign in enumerate(campaigns[:2]):
            adset = Entity(account=account, level="adset", platform_id=f"s{c}", parent=campaign)
            session.add_all([adset] + [Entity(account=account, level="ad",
                                              platform_id=f"a{c}-{k}", parent=adset)
                                       for k in range(3)])
        session.add(Entity(account=account, level="ad", platform_id="loose",
                           parent=campaigns[3]))
        foreign = Entity(account=other, level="campaign", platform_id="x")
        session.add(foreign)
        session.flush()
        parents = entity_parents(session, account.id)
        for chosen in ([campaigns[0]], campaigns[1:], [campaigns[2], foreign], []):
            ids = [c.id for c in chosen]
            assert entities_under_campaigns(session, account.id, ids) == \
                entities_in_campaigns(parents, ids), [c.platform_id for c in chosen]
        assert len(entities_under_campaigns(session, account.id, [campaigns[1].id])) == 5
