"""Celery tasks of alerting: deliver the outbox, enqueue the daily digests.

Both are safe to run often and on several workers at once: the outbox claim leases each row to
one deliverer, and a digest's idempotency key makes it once per channel and local day. The lead
wires them in the Beat schedule (deliver every minute, digests every five minutes; a digest goes
out at the first run after ``alert_digest_time`` in each account's timezone).
"""

from __future__ import annotations

from adsentinel.worker.app import celery_app
from adsentinel.worker.runtime import get_runtime


@celery_app.task(name="adsentinel.deliver_alerts")
def deliver_alerts() -> dict:
    """Send the alerts that are due; returns ``{"sent", "retrying", "failed", "held"}``."""
    from adsentinel.alerts.service import deliver_alerts as deliver

    runtime = get_runtime()
    return deliver(session_factory=runtime.session_factory, settings=runtime.settings)


@celery_app.task(name="adsentinel.send_alert_digests")
def send_alert_digests() -> dict:
    """Enqueue the digests whose local time has come, then deliver what is due."""
    from adsentinel.alerts.service import deliver_alerts as deliver
    from adsentinel.alerts.service import send_digests

    runtime = get_runtime()
    digests = send_digests(session_factory=runtime.session_factory, settings=runtime.settings)
    return {**digests, **deliver(session_factory=runtime.session_factory,
                                 settings=runtime.settings)}
