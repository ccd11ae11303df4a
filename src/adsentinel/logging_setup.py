"""Log set-up shared by the CLI, the API server and the workers.

Two formats, chosen by ``ADSENTINEL_LOG_FORMAT``:

* ``text`` (the default): one readable line per record on stderr (rich), for a terminal;
* ``json``: one JSON object per line on stderr (``python-json-logger``), for a log collector:
  ``time``, ``level``, ``logger``, ``message``, and ``account``, ``task``, ``run_id`` whenever the
  code that logged ran inside :func:`log_context` (a Celery task, an API request, a scheduled
  job of ``adsentinel run``).

Whatever the format, every record is scrubbed before it is written: Meta access tokens and app
secret proofs (:func:`adsentinel.sync.errors.scrub_secrets`) and adsentinel API tokens
(:func:`adsentinel.service.tokens.scrub_api_tokens`), in the message, its arguments and the
traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, TextIO

from adsentinel.sync.errors import scrub_secrets

LOG_FORMATS = ("text", "json")
#: the fields :func:`log_context` may set, in the order they appear
CONTEXT_FIELDS = ("account", "task", "run_id")
#: libraries that log too much at INFO
_NOISY_LOGGERS = ("alembic", "sqlalchemy")
#: uvicorn's loggers: with ``log_config=None`` they reach the root handler like any other
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

_context: ContextVar[Mapping[str, Any]] = ContextVar("adsentinel_log_context",
                                                      default=MappingProxyType({}))


def scrub(text: str) -> str:
    """``text`` without Meta tokens, app secret proofs or adsentinel API tokens."""
    text = scrub_secrets(text)
    if "ads_" not in text:  # TOKEN_PREFIX: no API token can be in it
        return text
    # imported when needed: the tokens' service loads SQLAlchemy, which `--help` need not
    from adsentinel.service.tokens import scrub_api_tokens

    return scrub_api_tokens(text)


def bind_log_context(**fields: Any) -> Token:
    """Tag every record logged from now on with ``fields`` (``account``, ``task``, ``run_id``;
    ``None`` values are left out) until :func:`reset_log_context` gets the returned token.

    For code that starts and ends in two callbacks (Celery's task signals); elsewhere use
    :func:`log_context`."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"log context takes {', '.join(CONTEXT_FIELDS)}, got {sorted(unknown)}")
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def reset_log_context(token: Token) -> None:
    """Back to the context before the :func:`bind_log_context` that returned ``token``."""
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Tag every record logged inside the block with ``fields`` (``account``, ``task``,
    ``run_id``); blocks nest, the inner value of a field wins."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


def current_log_context() -> dict[str, Any]:
    """The fields :func:`log_context` set for the calling code (empty outside any block)."""
    return dict(_context.get())


class ContextAndScrubFilter(logging.Filter):
    """Adds the :func:`log_context` fields to a record and scrubs secrets from its text.

    The message is formatted here once (``msg % args``) and scrubbed, so that neither a token in
    an argument nor one in an exception's text reaches the formatter.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
            record.exc_info = None  # the scrubbed text is what gets written
        return True


class _TextContextFormatter(logging.Formatter):
    """The message, then ``[account=.. task=.. run_id=..]`` when they are known."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        known = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                 if getattr(record, name, None) is not None]
        return f"{message} [{' '.join(known)}]" if known else message


def json_formatter() -> logging.Formatter:
    """The JSON formatter: ``time``, ``level``, ``logger``, ``message`` and every extra field."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger", "exc_info": "traceback"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z")


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """The handler that writes records in ``log_format`` (``text`` or ``json``) to ``stream``
    (default stderr), with the context-and-scrub filter attached."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be {' or '.join(LOG_FORMATS)}, got {log_format!r}")
    if log_format == "json":
        handler: logging.Handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(json_formatter())
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True) if stream is None else Console(file=stream)
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(_TextContextFormatter("%(message)s", datefmt="[%X]"))
    handler.addFilter(ContextAndScrubFilter())
    handler._adsentinel = log_format  # type: ignore[attr-defined]  # ours, to replace later
    return handler


def configure_logging(*, level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Send every log record (adsentinel's, Celery's, uvicorn's) through one handler on the
    root logger, in ``log_format``. Calling it again replaces that handler (idempotent)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if hasattr(h, "_adsentinel")]:
        root.removeHandler(old)
    root.addHandler(make_handler(log_format, stream))
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a record too, not a raw stderr line
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in UVICORN_LOGGERS:  # the server logs like everything else
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def configure_from_settings(settings: Any) -> None:
    """:func:`configure_logging` with the ``log_level`` and ``log_format`` of ``settings``."""
    configure_logging(level=settings.log_level, log_format=settings.log_format)
