"""Engines on databases that are not adsentinel's own: a warehouse to import insights from
(``adsentinel import --from-sql``) and a database to export anomalies to (``--to-sql``)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from adsentinel.errors import ConfigError


def external_engine(url: str, *, option: str, example: str, dialect_hint: str) -> Engine:
    """An engine on ``url`` (``postgresql://`` uses the installed driver, psycopg 3).

    A URL that does not parse, or names a dialect or driver that is not installed, is a
    :class:`ConfigError` naming ``option`` (``--from-sql``), with ``example`` URL(s) and
    ``dialect_hint`` (what to install).
    """
    try:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed)
    except (NoSuchModuleError, ImportError):  # NoSuchModuleError is an ArgumentError too
        raise ConfigError(f"no SQLAlchemy dialect or driver for {url.split(':', 1)[0]!r}",
                          hint=dialect_hint) from None
    except (ArgumentError, ValueError):
        raise ConfigError(f"{option} is not a database URL; expected e.g. {example}") from None
