"""Settings: names and defaults (README, Settings), validation with clear messages, masked secrets."""

from __future__ import annotations

from datetime import time

import pytest

from adsentinel.config import load_settings
from adsentinel.errors import ConfigError


def test_defaults_follow_the_plan():
    settings = load_settings()
    assert settings.use_isolation_forest is True
    assert settings.isolation_forest_min_samples == 50
    assert settings.isolation_forest_contamination == 0.1
    assert settings.isolation_forest_history_days == 90
    assert settings.training_time == time(4, 0)
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("user-data/adsentinel/adsentinel.db")
    assert settings.effective_models_path.as_posix().endswith("user-data/adsentinel/models")


def test_environment_and_dotenv_are_read(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("ADSENTINEL_ANOMALY_Z_THRESHOLD=2.5\nADSENTINEL_TIMEZONE=UTC\n")
    monkeypatch.setenv("ADSENTINEL_TIMEZONE", "America/Sao_Paulo")
    monkeypatch.setenv("ADSENTINEL_TRAINING_TIME", "05:30")
    settings = load_settings()
    assert settings.anomaly_z_threshold == 2.5
    assert settings.timezone == "America/Sao_Paulo"  # environment beats .env
    assert settings.training_time == time(5, 30)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ADSENTINEL_TIMEZONE", "Mars/Olympus", "ADSENTINEL_TIMEZONE: unknown timezone"),
        ("ADSENTINEL_ISOLATION_FOREST_CONTAMINATION", "0.9", "ADSENTINEL_ISOLATION_FOREST_CONTAMINATION"),
        ("ADSENTINEL_ISOLATION_FOREST_MIN_SAMPLES", "many", "ADSENTINEL_ISOLATION_FOREST_MIN_SAMPLES"),
        ("ADSENTINEL_DATABASE_URL", "mysql://u@h/db", "backend 'mysql' is not supported"),
        ("ADSENTINEL_DATABASE_URL", "not a url", "is not a database URL"),
        ("ADSENTINEL_TRAINING_TIME", "25:00", "ADSENTINEL_TRAINING_TIME"),
        ("ADSENTINEL_LOG_LEVEL", "LOUD", "ADSENTINEL_LOG_LEVEL"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_history_shorter_than_min_samples_is_refused(monkeypatch):
    monkeypatch.setenv("ADSENTINEL_ISOLATION_FOREST_HISTORY_DAYS", "30")
    with pytest.raises(ConfigError, match="no entity could ever be trained"):
        load_settings()


def test_secrets_are_masked_everywhere(monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATABASE_URL", "postgresql://app:hunter2@db:5432/ads")
    monkeypatch.setenv("ADSENTINEL_BROKER_URL", "redis://:s3cret@cache:6379/0")
    monkeypatch.setenv("ADSENTINEL_MODEL_SIGNING_KEY", "k3y-material")
    shown = repr(load_settings().masked())
    for secret in ("hunter2", "s3cret", "k3y-material"):
        assert secret not in shown
    assert "postgresql+psycopg://app:***@db:5432/ads" in shown


def test_secret_is_not_echoed_in_validation_errors(monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATABASE_URL", "oracle://app:hunter2@db/ads")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_chunks_and_batches_are_sized_from_the_memory_budget(monkeypatch):
    """Unset, CHUNK_ENTITIES and TRAINING_BATCH_ENTITIES follow WORKER_MEMORY_MIB and the history
    kept per entity; set, they are taken as given."""
    default = load_settings()
    # a quarter of the 724 MiB above the process base for the model cache, the rest for data
    assert default.model_cache_mib == 181
    assert (default.chunk_size, default.training_batch_size) == (3432, 7268)
    monkeypatch.setenv("ADSENTINEL_WORKER_MEMORY_MIB", "1748")  # twice the memory above the base
    bigger = load_settings()
    assert bigger.model_cache_mib == 2 * 181
    assert bigger.chunk_size == pytest.approx(2 * 3432, abs=2)
    assert bigger.training_batch_size == pytest.approx(2 * 7268, abs=2)
    monkeypatch.setenv("ADSENTINEL_ISOLATION_FOREST_HISTORY_DAYS", "180")  # twice the history
    assert load_settings().chunk_size == pytest.approx(3432, abs=2)
    monkeypatch.setenv("ADSENTINEL_CHUNK_ENTITIES", "25")
    monkeypatch.setenv("ADSENTINEL_TRAINING_BATCH_ENTITIES", "60")
    explicit = load_settings()
    assert (explicit.chunk_size, explicit.training_batch_size) == (25, 60)


def test_a_budget_below_the_process_base_is_refused(monkeypatch):
    monkeypatch.setenv("ADSENTINEL_WORKER_MEMORY_MIB", "200")
    with pytest.raises(ConfigError, match="ADSENTINEL_WORKER_MEMORY_MIB"):
        load_settings()
