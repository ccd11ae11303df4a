"""The Celery tasks of alerting, run in-process (``apply``): thin calls into the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alert_builders import add_anomaly, build_shop

from adsentinel.alerts.config import add_channel
from adsentinel.alerts.service import plan_alerts
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.worker.alert_tasks import deliver_alerts, send_alert_digests
from adsentinel.worker.runtime import _runtime_for


@pytest.fixture
def runtime_on(settings, monkeypatch):
    """The worker runtime built from the environment, pointed at the test's database."""
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ADSENTINEL_ALERT_DIGEST_TIME", "00:00")  # a digest is always due
    _runtime_for.cache_clear()
    yield
    _runtime_for.cache_clear()


def test_tasks_deliver_alerts_and_digests(settings, runtime_on, http_receiver):
    engine = open_database(settings)
    factory = make_session_factory(engine)
    today = datetime.now(UTC).date()
    shop = build_shop(factory, last_day=today - timedelta(days=1))
    add_channel(session_factory=factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref)
    add_anomaly(shop, shop.campaign, today - timedelta(days=1))
    plan_alerts(session_factory=factory, settings=settings, account_id=shop.account_id)

    assert deliver_alerts.apply().get()["sent"] == 1
    assert deliver_alerts.apply().get()["sent"] == 0

    add_channel(session_factory=factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref, digest=True)
    assert send_alert_digests.apply().get() == {"digests": 1, "sent": 1, "retrying": 0,
                                                "failed": 0, "held": 0}
    assert send_alert_digests.apply().get()["digests"] == 0  # once a day
    texts = [json.loads(r.body)["text"] for r in http_receiver.requests]
    assert texts[0].startswith("[HIGH] Acme: CPL up on Black Friday")
    assert texts[1] == f"[digest] Acme: 1 incident on {today.isoformat()}"
    engine.dispose()
