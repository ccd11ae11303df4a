"""The Typer application and what every command shares: settings, logging, error reporting."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from adsentinel.config import Settings, load_settings
from adsentinel.errors import AdsentinelError
from adsentinel.logging_setup import configure_from_settings

app = typer.Typer(
    name="adsentinel",
    help="Watch Meta Ads performance and report what went wrong, where, and by how much.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)


def get_settings() -> Settings:
    """Settings for this command, and logging configured from them."""
    settings = load_settings()
    configure_from_settings(settings)
    return settings


def main() -> None:
    """Console entry point: domain errors become one red line and a non-zero exit code."""
    try:
        app(standalone_mode=False)
    except AdsentinelError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        sys.exit(code if code is not None else getattr(exc, "code", 0))
    except Exception as exc:  # click usage errors carry their own formatting
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
