"""The Typer application and what every command shares: settings, logging, error reporting."""

from __future__ import annotations

import logging
import sys
from datetime import date
from typing import TYPE_CHECKING, Annotated, overload

import click
import typer
import typer.main
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer's own click

from adsentinel import __version__
from adsentinel.cli.help_language import localize_help
from adsentinel.errors import AdsentinelError

if TYPE_CHECKING:
    from adsentinel.config import Settings

app = typer.Typer(
    name="adsentinel",
    help="Watch Meta Ads performance and report what went wrong, where, and by how much.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # sub-commands inherit it
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("adsentinel.cli")


def _print_version(wanted: bool) -> None:
    if wanted:
        console.print(f"adsentinel {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def global_options(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Options that come before the command (``adsentinel --version``)."""


def get_settings() -> Settings:
    """Settings for this command, and logging configured from them. (Settings, pydantic and
    SQLAlchemy are imported here, not with the CLI: ``--help`` and ``--version`` stay light.)"""
    from adsentinel.config import load_settings
    from adsentinel.logging_setup import configure_from_settings

    settings = load_settings()
    configure_from_settings(settings)
    log.info("data folder: %s (%s)", settings.data_dir.resolve(), settings.data_dir_origin)
    return settings


def main() -> None:
    """Console entry point: exits with the command's code (``typer.Exit`` included); domain and
    usage errors become one line on stderr and their exit code, never a traceback."""
    sys.exit(run(sys.argv[1:]))


def run(args: list[str]) -> int:
    """Run the command line ``args``; the process exit code."""
    command = typer.main.get_command(app)
    localize_help(command, cli_language())  # --help in the CLI's language
    try:
        # not standalone: errors come here to be reported in one line; the return value is
        # the code of a typer.Exit (or of --help), None when the command simply ended
        code = command(args=args, prog_name="adsentinel", standalone_mode=False)
    except AdsentinelError as exc:
        print_error(exc.message, exc.hint)
        return exc.exit_code
    except (typer.Abort, click.Abort):
        err_console.print(_("aborted"))
        return 130
    except KeyboardInterrupt:
        err_console.print(_("interrupted"))
        return 130
    except (typer.TyperException, click.ClickException) as exc:
        # Typer raises its own click's exceptions (typer.TyperException), not click's
        print_error(usage_error_line(exc))
        return exc.exit_code
    return code if isinstance(code, int) else 0


def usage_error_line(exc: typer.TyperException | click.ClickException) -> str:
    """A usage error (unknown option, missing argument, bad value, no command) in one line,
    with the ``--help`` to try."""
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "adsentinel"
    if isinstance(exc, NoArgsIsHelpError):
        message = _("%(command)s needs a command", command=command)
    else:
        message = " ".join(exc.format_message().split()).replace("Value error, ", "")
    return _("%(message)s (try '%(command)s --help')", message=message, command=command)


def print_error(message: str, hint: str | None = None) -> None:
    """``error: message`` (and ``hint: ...``) on stderr, the text printed as it is (no markup),
    in the CLI's language (ADSENTINEL_LOCALE, else LANG): a message or hint the ``messages``
    catalog knows word for word is translated, others are printed as written."""
    err_console.print(Text.assemble((_("error:"), "bold red"), " ", _(message)),
                      soft_wrap=True)
    if hint:
        err_console.print(Text.assemble((_("hint:"), "yellow"), " ", _(hint)),
                          soft_wrap=True)


def cli_language():
    """The CLI's :class:`~adsentinel.i18n.Language` (ADSENTINEL_LOCALE, else LANG); English
    when ADSENTINEL_LOCALE names a language without a catalog (the settings report that
    mistake themselves, as a one-line error)."""
    from adsentinel.i18n import DEFAULT_LOCALE, language, locale_from_environment

    try:
        return language(locale_from_environment())
    except ValueError:
        return language(DEFAULT_LOCALE)


def gettext(message: str, /, **variables: object) -> str:
    """``message`` in the CLI's language, its ``%(name)s`` placeholders filled in (command
    modules import it as ``_``)."""
    return cli_language().gettext(message, **variables)


def ngettext(singular: str, plural: str, num: int, /, **variables: object) -> str:
    """The form of a message for ``num``, in the CLI's language."""
    return cli_language().ngettext(singular, plural, num, **variables)


_ = gettext


@overload
def option_day(text: str, option: str) -> date: ...
@overload
def option_day(text: str | None, option: str) -> date | None: ...
def option_day(text: str | None, option: str) -> date | None:
    """The day an option names (``YYYY-MM-DD``); ``None`` when the option was not given. A
    value that is not a day is a usage error naming the option (exit 2, as any bad value)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("%(option)s must be a date YYYY-MM-DD, got %(value)r",
                           option=option, value=text)) from None
