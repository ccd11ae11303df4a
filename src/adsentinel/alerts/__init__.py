"""Alerts: from stored anomalies to incidents, messages, suppression rules and a delivery outbox.

Pure logic (``incidents``, ``messages``, ``suppression``, ``feedback``) is separate from I/O
(``outbox`` reads and writes the database, ``channels`` talks to Slack, webhooks and SMTP); the
service :mod:`adsentinel.alerts.service` ties them together; channels, mutes and calendars are
set up in :mod:`adsentinel.alerts.config`.
"""
