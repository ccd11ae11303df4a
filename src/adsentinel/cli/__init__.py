"""Command-line interface. Each module registers the commands of one area on :data:`app`."""

# importing a module registers its commands on app
from adsentinel.cli import (  # noqa: F401
    account_commands,  # `accounts`
    alert_commands,  # `alerts`, `mute`, `calendar`, `anomalies`
    api_commands,  # `serve`, `tokens`
    data_commands,
    demo_command,
    detect_commands,  # `detect`
    evaluate_commands,  # `backtest`, `evaluate`
    export_commands,  # `export`
    generate_command,  # `generate`
    model_commands,  # `train`
    status_commands,  # `status`
    sync_commands,  # `sync`
    system_commands,
    worker_commands,  # `worker`, `beat`, `run`
)
from adsentinel.cli.app import app, main

__all__ = ["app", "main"]
