"""The command line's ``--help`` in the CLI's language.

Typer builds each command's help from its docstring and each option's from its ``help=``, in
English. Before a command line runs, :func:`localize_help` replaces those texts in the command
tree with the ``messages`` catalog's translation, and the few words Typer writes itself (its
panel titles, ``[default: ...]``, ``[required]``, the help option's own help). The messages are
the texts themselves, collected from the tree by :func:`help_messages` (``tests/test_i18n.py``
holds every one of them to a pt_BR translation), so a docstring needs no marking. English
leaves the tree as it is and reads no catalog; the catalog is read once per process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from adsentinel.i18n import DEFAULT_LOCALE, Language

#: what Typer writes around the texts (``typer.rich_utils``'s constants, read when it renders)
TYPER_WORDS: dict[str, str] = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands",
    "DEFAULT_STRING": "[default: {}]",
    "REQUIRED_LONG_STRING": "[required]",
    "ENVVAR_STRING": "[env var: {}]",
    "DEPRECATED_STRING": "(deprecated) ",
}
#: the help option's own help, which Typer adds to every command
HELP_OPTION_HELP = "Show this message and exit."


def help_texts(command: Any, path: str = "adsentinel") -> Iterator[tuple[str, str, str]]:
    """``(where, attribute, text)`` of every help text in ``command``'s tree: each command's
    ``help``, ``short_help`` and ``epilog``, each parameter's ``help``."""
    for attribute in ("help", "short_help", "epilog"):
        if text := getattr(command, attribute, None):
            yield path, attribute, text
    for param in command.params:
        if text := getattr(param, "help", None):
            yield f"{path} {param.name}", "help", text
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from help_texts(sub, f"{path} {name}")


def help_messages(command: Any) -> dict[str, list[str]]:
    """Every text :func:`localize_help` translates, with where it is shown."""
    found: dict[str, list[str]] = {}
    for where, _attribute, text in help_texts(command):
        found.setdefault(text, []).append(where)
    for english in (*TYPER_WORDS.values(), HELP_OPTION_HELP):
        found.setdefault(english, []).append("Typer's own words")
    return found


def localize_help(command: Any, lang: Language) -> None:
    """Put the help texts of ``command``'s tree (a fresh one: ``typer.main.get_command``), and
    Typer's own words, in ``lang``."""
    if lang.locale == DEFAULT_LOCALE:
        rich_utils = sys.modules.get("typer.rich_utils")  # Typer's words are module-wide:
        if rich_utils is not None:  # back to English after another language in this process
            for name, english in TYPER_WORDS.items():
                setattr(rich_utils, name, english)
        return
    from typer import rich_utils

    for name, english in TYPER_WORDS.items():
        setattr(rich_utils, name, lang.gettext(english))
    _localize(command, lang)


def _localize(command: Any, lang: Language) -> None:
    for attribute in ("help", "short_help", "epilog"):
        if text := getattr(command, attribute, None):
            setattr(command, attribute, lang.gettext(text))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = lang.gettext(param.help)
    if getattr(command, "add_help_option", False) and command._help_option is None:
        _help_option(command).help = lang.gettext(HELP_OPTION_HELP)
    for sub in getattr(command, "commands", {}).values():
        _localize(sub, lang)


def _help_option(command: Any) -> Any:
    """The command's ``-h/--help`` option, made as Typer makes it on first use (and kept)."""
    from typer._click.core import Context

    return command.get_help_option(Context(command, help_option_names=["-h", "--help"]))


__all__ = ["HELP_OPTION_HELP", "TYPER_WORDS", "help_messages", "help_texts", "localize_help"]
