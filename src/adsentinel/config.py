"""Settings: every knob of adsentinel, in one validated place.

Values come from (highest priority first) keyword arguments, ``ADSENTINEL_*`` environment
variables, a ``.env`` file in the working directory, and the defaults below. Build the object once
at an edge (CLI command, worker start-up, API app) with :func:`load_settings` and pass it down;
maths in :mod:`adsentinel.detect` never sees it.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adsentinel.errors import ConfigError

ENV_PREFIX = "ADSENTINEL_"
#: The data folder of a checkout: used when it exists in the working directory (``make demo``).
LOCAL_DATA_DIR = Path("adsentinel-data")
_SECRET_FIELDS = {"database_url", "broker_url", "model_signing_key"}


class Settings(BaseSettings):
    """Effective configuration of one adsentinel process.

    The isolation-forest and statistical settings keep the names and defaults that deployments
    already use (README, Settings, says where they come from).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Local folder for the embedded SQLite database and model store. Default: "
        "./adsentinel-data if that folder exists in the working directory, otherwise the user's "
        "data folder (~/.local/share/adsentinel on Linux).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file <data_dir>/adsentinel.db.",
    )
    models_storage_path: Path | None = Field(
        default=None,
        description="Root of the model store; default: <data_dir>/models. Share it between "
        "machines (NFS or similar) in a multi-machine deployment.",
    )
    models_storage_url: SecretStr | None = Field(
        default=None,
        description="Where the model store lives when not in the local folder: "
        "postgresql://user:password@host/db (a table adsentinel_model_blobs, created on first "
        "use) or s3://bucket/prefix (boto3's credentials; ?endpoint_url=http://host:port for "
        "another S3-compatible server). Default: the folder models_storage_path.",
    )
    model_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key that signs model files. Default: the key in "
        "model_signing_key_file, else a random key created once in <data_dir>/.signing-key "
        "(outside the model store). Set the same value on every machine.",
    )
    model_signing_key_file: Path | None = Field(
        default=None,
        description="File holding the model signing key (at least 32 hex characters, e.g. "
        "`openssl rand -hex 32`), outside the model store and readable by its owner only.",
    )

    # --- scheduling ----------------------------------------------------------------------------
    broker_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="Celery broker (Redis in production).",
    )
    training_time: time = Field(
        default=time(4, 0), description="Local time of the daily training run (HH:MM)."
    )
    timezone: str = Field(default="UTC", description="IANA timezone of the schedule.")
    detection_minute: int = Field(
        default=5, ge=0, le=59, description="Minute of every hour at which detection runs."
    )
    task_soft_time_limit: int = Field(
        default=3300, ge=1, description="Seconds after which a task is asked to stop."
    )
    task_time_limit: int = Field(
        default=3600, ge=1, description="Seconds after which a task's worker process is killed."
    )
    broker_visibility_timeout: int = Field(
        default=7200, ge=1,
        description="Seconds before a task taken by a worker that died is delivered again; "
        "must exceed task_time_limit.",
    )
    lock_retry_seconds: int = Field(
        default=30, ge=1,
        description="A task whose account is locked by another run is retried after this long.",
    )
    worker_memory_mib: int = Field(
        default=1024, ge=512,
        description="Memory one detection or training process may use: detection chunks and "
        "training batches hold as many entities as fit in it.",
    )
    chunk_entities: int | None = Field(
        default=None, ge=1,
        description="Accounts with more entities are split into chunks of whole campaigns that "
        "workers share; unset: as many as WORKER_MEMORY_MIB holds.",
    )
    training_batch_entities: int | None = Field(
        default=None, ge=1,
        description="A training reads and fits this many entities (whole campaigns) at a time "
        "and writes their packs before the next batch; unset: as many as WORKER_MEMORY_MIB holds.",
    )

    # --- isolation forest ----------------------------------------------------------------------
    use_isolation_forest: bool = True
    isolation_forest_min_samples: int = Field(default=50, ge=2)
    isolation_forest_contamination: float = Field(default=0.1, gt=0.0, le=0.5)
    isolation_forest_history_days: int = Field(default=90, ge=2)

    # --- statistical detectors -----------------------------------------------------------------
    anomaly_z_threshold: float = Field(default=3.0, gt=0.0, allow_inf_nan=False)
    anomaly_iqr_multiplier: float = Field(default=1.5, gt=0.0, allow_inf_nan=False)
    anomaly_min_history_days: int = Field(default=14, ge=3)
    frequency_ideal: float = Field(default=3.0, gt=1.0, allow_inf_nan=False)

    # --- Meta Marketing API sync -------------------------------------------------------------
    result_action_types: str = Field(
        default="lead",
        description="Comma-separated Meta action types counted as results (leads). 'lead' "
        "already includes onsite_conversion.lead_grouped and offsite_conversion.fb_pixel_lead: "
        "do not add them on top of it. An account can override it.",
    )
    sync_window_days: int = Field(
        default=28, ge=1, le=400,
        description="Every sync re-pulls this many past days so restated numbers replace old ones.",
    )
    sync_async_poll_timeout: int = Field(
        default=3600, ge=1,
        description="Seconds to wait for one asynchronous insights report job before it is "
        "split and retried (Meta's jobs can take up to an hour).",
    )
    sync_usage_slowdown_percent: float = Field(
        default=75.0, gt=0.0, le=100.0,
        description="Above this share of a Meta rate-limit budget, sync calls are spaced out.",
    )
    meta_graph_url: str = Field(
        default="https://graph.facebook.com", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Base URL of the Graph API (a recording proxy or a local emulator can "
        "stand in for Meta).",
    )
    meta_api_version: str = Field(
        default="v26.0", pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$",
        description="Graph API version every sync call uses, e.g. v26.0; Meta retires each "
        "version about two years after its release (error 2635).",
    )
    meta_app_secret_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
        description="NAME of the environment variable holding the Meta app secret; when set, "
        "every call carries appsecret_proof (needed when the app requires it).",
    )
    sync_connect_timeout: float = Field(
        default=10.0, gt=0.0, le=300.0, allow_inf_nan=False,
        description="Seconds to wait for a connection to the Graph API.",
    )
    sync_read_timeout: float = Field(
        default=120.0, gt=0.0, le=3600.0, allow_inf_nan=False,
        description="Seconds to wait for the Graph API to answer a request before retrying it.",
    )
    sync_alert_after_failures: int = Field(
        default=3, ge=1, le=100,
        description="Failed syncs of an account in a row before its alert channels are told.",
    )

    # --- API and dashboard ----------------------------------------------------------------------
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Address users reach the dashboard at; alert links point there.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs dashboard session cookies. Default: a random key created "
        "once in <data_dir>/.session-key. Set the same value on every API machine.",
    )
    auth_failure_limit: int = Field(
        default=10, ge=0, le=1_000_000,
        description="Failed logins and bad API tokens one client may send within "
        "AUTH_FAILURE_WINDOW_SECONDS; past it the client is answered 429 (with Retry-After) "
        "until the window has passed. Counted per server process; 0: no limit.",
    )
    auth_failure_window_seconds: int = Field(default=300, ge=1, le=86_400)
    chart_queue_limit: int = Field(
        default=8, ge=0, le=10_000,
        description="Chart requests that may wait while a server process computes one (charts "
        "are computed one at a time per process); past it they are answered 429 with "
        "Retry-After.",
    )

    # --- language -------------------------------------------------------------------------------
    locale: str = Field(
        default="en",
        description="Language (en or pt_BR) of the CLI's messages, and of the alerts and report of "
        "an account without its own (adsentinel accounts edit --locale).",
    )

    # --- alerts ---------------------------------------------------------------------------------
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for email alerts.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS (port 587); the "
        "server's certificate and name are verified.")
    smtp_ssl: bool = Field(
        default=False, description="SMTPS: TLS from the first byte (port 465); verified.")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the SMTP server with; default: the "
        "system's CAs.")
    smtp_allow_plaintext_login: bool = Field(
        default=False, description="Allow SMTP_USERNAME without STARTTLS or SSL (the password "
        "then crosses the network in clear): only on a network you trust.")
    smtp_from: str = Field(default="adsentinel@localhost", description="Sender of email alerts.")
    alert_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts of one alert before it is marked failed."
    )
    alert_digest_time: time = Field(
        default=time(8, 0), description="Local time at which daily digests are sent (HH:MM)."
    )

    # --- misc ----------------------------------------------------------------------------------
    log_level: str = Field(default="INFO")
    log_format: str = Field(
        default="text", pattern=r"^(text|json)$",
        description="text: readable lines for a terminal; json: one JSON object per line "
        "(with account, task and run id) for a log collector.",
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Port on which `adsentinel worker` serves Prometheus metrics (all its "
        "processes together); 0: none.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _utf8_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # bytes of another encoding, smuggled in by the OS
                raise ValueError("is not UTF-8 text") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a long name
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'America/Sao_Paulo'"
            ) from None
        return value

    @field_validator("locale")
    @classmethod
    def _supported_locale(cls, value: str) -> str:
        from adsentinel.i18n import parse_locale

        return parse_locale(value)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
        return level

    @field_validator("database_url")
    @classmethod
    def _parsable_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url  # SQLAlchemy only when a URL is given
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value.get_secret_value())
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ValueError(
                "is not a database URL; expected e.g. sqlite:///path/to.db or "
                "postgresql+psycopg://user@host:5432/dbname"
            ) from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(
                f"backend {url.get_backend_name()!r} is not supported; use sqlite or postgresql"
            )
        return value

    @model_validator(mode="after")
    def _history_can_hold_min_samples(self) -> Settings:
        if self.isolation_forest_history_days < self.isolation_forest_min_samples:
            raise ValueError(
                f"{ENV_PREFIX}ISOLATION_FOREST_HISTORY_DAYS ({self.isolation_forest_history_days}) "
                f"is shorter than {ENV_PREFIX}ISOLATION_FOREST_MIN_SAMPLES "
                f"({self.isolation_forest_min_samples}): no entity could ever be trained; raise "
                "the first or lower the second"
            )
        return self

    @model_validator(mode="after")
    def _time_limits_are_ordered(self) -> Settings:
        if not self.task_soft_time_limit < self.task_time_limit < self.broker_visibility_timeout:
            raise ValueError(
                f"time limits must satisfy {ENV_PREFIX}TASK_SOFT_TIME_LIMIT < "
                f"{ENV_PREFIX}TASK_TIME_LIMIT < {ENV_PREFIX}BROKER_VISIBILITY_TIMEOUT, got "
                f"{self.task_soft_time_limit} / "
                f"{self.task_time_limit} / {self.broker_visibility_timeout}: otherwise a task "
                "still running would be delivered to a second worker"
            )
        return self

    # --- derived values -----------------------------------------------------------------------
    @property
    def chunk_size(self) -> int:
        """Entities per chunk of a large account that workers share (detection's and training's
        fan-out): ``CHUNK_ENTITIES``, or as many as the memory budget holds for detection, the
        step that holds a chunk's whole history at once."""
        return self.chunk_entities or entities_within_budget(
            self.worker_memory_mib - self.model_cache_mib, DETECTION_KIB_PER_ENTITY_DAY,
            self.isolation_forest_history_days)

    @property
    def training_batch_size(self) -> int:
        """Entities per training batch: ``TRAINING_BATCH_ENTITIES``, or as many as the memory
        budget holds."""
        return self.training_batch_entities or entities_within_budget(
            self.worker_memory_mib - self.model_cache_mib, TRAINING_KIB_PER_ENTITY_DAY,
            self.isolation_forest_history_days)

    @property
    def model_cache_mib(self) -> int:
        """What the process's cache of verified models may hold: :data:`MODEL_CACHE_SHARE` of
        the memory budget above what the process holds before reading any entity."""
        return int(max(self.worker_memory_mib - PROCESS_BASE_MIB, 0) * MODEL_CACHE_SHARE)

    @property
    def effective_database_url(self) -> str:
        """The database URL in use (the SQLite default is placed under ``data_dir``)."""
        if self.database_url is not None:
            url = self.database_url.get_secret_value()
            if url.startswith("postgresql://"):  # pick the installed driver, psycopg 3
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'adsentinel.db').as_posix()}"

    @property
    def data_dir_origin(self) -> str:
        """Why :attr:`data_dir` is the folder it is, for a user wondering where their data went."""
        if "data_dir" in self.model_fields_set:
            return f"set by {ENV_PREFIX}DATA_DIR"
        if self.data_dir == LOCAL_DATA_DIR:
            return f"./{LOCAL_DATA_DIR} exists here; {ENV_PREFIX}DATA_DIR is not set"
        return f"the user data folder; {ENV_PREFIX}DATA_DIR is not set"

    @property
    def effective_models_path(self) -> Path:
        """Root folder of the model store."""
        return self.models_storage_path or self.data_dir / "models"

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's timezone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values, with secrets (and URL passwords) masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url":
                value = _mask_url_password(self.effective_database_url)
            elif name in ("broker_url", "models_storage_url") and value is not None:
                value = _mask_url_password(value.get_secret_value())
            elif isinstance(value, SecretStr):
                value = "********"
            elif name == "models_storage_path":
                value = self.effective_models_path
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, time):
                value = value.strftime("%H:%M")
            shown[name] = value
        return shown


#: What a worker process holds before it reads any entity (the interpreter, numpy, pandas, the
#: service's modules; ``ru_maxrss`` after importing them: 292 MiB on this project's machine).
PROCESS_BASE_MIB = 300
#: Memory per entity and history day while detecting or training, from measured peaks at 90
#: days of history: one process detecting 5,883-entity chunks with its model cache off at
#: 1,216 MiB (``benchmarks/bench_detect.py``'s cycle at 30,000 entities: (1,216 - 300) MiB /
#: 5,883 / 90 = 1.77 KiB), a training worker at about 0.6 GiB for a 4,000-entity batch
#: (``benchmarks/bench_workers.py``: (600 - 300) MiB / 4,000 / 90 = 0.85 KiB).
DETECTION_KIB_PER_ENTITY_DAY = 1.8
TRAINING_KIB_PER_ENTITY_DAY = 0.85
#: The share of a worker's memory above :data:`PROCESS_BASE_MIB` that its cache of verified
#: models may hold (the rest is for the chunk or batch it works on). Left to its former fixed
#: 512 MiB, the cache took a detection process of 5,883-entity chunks from 1,216 to 1,467 MiB
#: at 30,000 entities, past the 1 GiB budget; and a cache smaller than a worker's share of the
#: account's models serves no hour from memory anyway (each hour reads them in the same order).
MODEL_CACHE_SHARE = 0.25


def entities_within_budget(budget_mib: int, kib_per_entity_day: float, history_days: int) -> int:
    """How many entities of ``history_days`` days one process can hold in ``budget_mib``, given
    what it holds before reading any (:data:`PROCESS_BASE_MIB`); at least one campaign's worth
    is always read, so never fewer than 100."""
    free_kib = max(budget_mib - PROCESS_BASE_MIB, 0) * 1024
    return max(int(free_kib / (kib_per_entity_day * history_days)), 100)


def default_data_dir() -> Path:
    """The data folder when ``ADSENTINEL_DATA_DIR`` is not set: ``./adsentinel-data`` if it
    exists in the working directory (a checkout after ``make demo``), otherwise the user's data
    folder, so a command run from another folder never starts a new empty database there."""
    return LOCAL_DATA_DIR if LOCAL_DATA_DIR.is_dir() else user_data_dir()


def user_data_dir() -> Path:
    """adsentinel's folder in the platform's per-user data directory: ``$XDG_DATA_HOME`` (or
    ``~/.local/share``) on Linux, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%``
    on Windows."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:  # the XDG spec ignores a relative XDG_DATA_HOME
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"
    return base / "adsentinel"


def _mask_url_password(url: str) -> str:
    if "@" not in url:  # no user or password to hide (the SQLite default): shown as it is
        return url
    from sqlalchemy.engine import make_url  # imported here: `config show` stays light
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not parsable: hide whatever sits before an "@"
        return re.sub(r":[^@]*@", ":***@", url)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation failures into one readable :class:`ConfigError`.

    Each problem is reported with the environment variable that sets it, so the user knows
    exactly what to change.
    """
    try:
        return Settings(**overrides)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the .env file in {Path.cwd()} is not UTF-8 text (byte {exc.start})",
                          hint="save .env as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the .env file in {Path.cwd()}: {exc.strerror or exc}",
                          hint="check its permissions") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            where = f"{ENV_PREFIX}{field.upper()}" if error["loc"] else "settings"
            given = error.get("input")
            hidden = isinstance(given, dict) or given is None or field in _SECRET_FIELDS
            shown = "" if hidden else f" (got {given!r})"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}{shown}" if error["loc"] else message)
        raise ConfigError(
            "invalid settings: " + "; ".join(problems),
            hint="fix the environment variable or the .env entry named above",
        ) from None
