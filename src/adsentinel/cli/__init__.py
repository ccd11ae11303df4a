"""Command-line interface. Each module registers the commands of one area on :data:`app`."""

from adsentinel.cli import data_commands, demo_command, system_commands  # noqa: F401  (registers commands)
from adsentinel.cli import generate_command  # noqa: F401  (registers `generate`)
from adsentinel.cli import model_commands  # noqa: F401  (registers `train`)
from adsentinel.cli import worker_commands  # noqa: F401  (registers `worker`, `beat`, `run`)
from adsentinel.cli import evaluate_commands  # noqa: F401  (registers `backtest`, `evaluate`)
from adsentinel.cli import detect_commands  # noqa: F401  (registers `detect`)
from adsentinel.cli import account_commands  # noqa: F401  (registers `accounts`)
from adsentinel.cli import sync_commands  # noqa: F401  (registers `sync`)
from adsentinel.cli import api_commands  # noqa: F401  (registers `serve`, `tokens`)
from adsentinel.cli import alert_commands  # noqa: F401  (registers `alerts`, `mute`, `calendar`, `anomalies`)
from adsentinel.cli import status_commands  # noqa: F401  (registers `status`)
from adsentinel.cli import export_commands  # noqa: F401  (registers `export`)
from adsentinel.cli.app import app, main

__all__ = ["app", "main"]
