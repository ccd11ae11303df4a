"""Languages: the ``messages`` catalog cannot rot (every string the code marks has a pt_BR
translation with the same placeholders, and the catalog holds nothing the code no longer says),
catalogs are compiled in memory, and Babel's formats are the ones Brazilians and English
readers expect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from adsentinel.i18n import (
    LOCALE_DIR,
    Language,
    catalog_path,
    language,
    locale_from_environment,
    parse_locale,
    translations,
)

ROOT = Path(__file__).resolve().parent.parent
#: named placeholders (``%(name)s``), and any other conversion (``%s``, ``%d``), which a
#: catalog must not use: a translation may need to reorder its values
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdrf]|%(?!%|\()[-#0 +]*\d*(?:\.\d+)?[sdrf]")


def source_messages(domain: str) -> dict[tuple[str | None, object], list[str]]:
    """Every message the sources of ``domain`` mark (``_``, ``gettext``, ``ngettext``,
    ``pgettext``, ``N_``), found as ``pybabel extract -F locale/<domain>.cfg`` finds them, by
    ``(context, message)``, with where it is."""
    with (LOCALE_DIR / f"{domain}.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found: dict[tuple[str | None, object], list[str]] = {}
    for filename, line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.setdefault((context, message), []).append(f"{filename}:{line}")
    if domain == "messages":  # the CLI's --help texts: docstrings and help=, from the tree
        for message, where in cli_help_messages().items():
            found.setdefault((None, message), []).extend(f"--help of {w}" for w in where)
    return found


def cli_help_messages() -> dict[str, list[str]]:
    import typer.main

    from adsentinel.cli import app
    from adsentinel.cli.help_language import help_messages

    return help_messages(typer.main.get_command(app))


def placeholders(text: str) -> list[str]:
    return sorted(match.group(0) if not match.group(1) else match.group(1)
                  for match in PLACEHOLDER.finditer(text))


def read_catalog(locale: str, domain: str):
    with catalog_path(locale, domain).open("rb") as source:
        return read_po(source, locale=locale, domain=domain)


def test_every_message_the_code_marks_has_a_pt_br_translation_with_the_same_placeholders():
    sources = source_messages("messages")
    catalog = read_catalog("pt_BR", "messages")
    assert len(sources) > 80  # alerts, report, CLI: the extraction found them
    problems = []
    for (context, key), where in sources.items():
        msgid = key[0] if isinstance(key, tuple) else key
        entry = catalog.get(msgid, context=context)
        if entry is None or entry.fuzzy:
            problems.append(f"{where[0]}: {msgid!r} is {'fuzzy' if entry else 'missing'} in "
                            "pt_BR/LC_MESSAGES/messages.po")
            continue
        ids = list(key) if isinstance(key, tuple) else [key]
        strings = list(entry.string) if isinstance(entry.string, (list, tuple)) else [entry.string]
        if isinstance(key, tuple) and len(strings) != catalog.num_plurals:
            problems.append(f"{msgid!r}: {len(strings)} plural forms, pt_BR has "
                            f"{catalog.num_plurals}")
        for text in strings:
            if not text.strip():
                problems.append(f"{where[0]}: {msgid!r} has an empty translation")
            # every form shows the same values (plural forms may drop %(num)d, gettext allows)
            wanted = {p for i in ids for p in placeholders(i)}
            if set(placeholders(text)) - wanted or wanted - set(placeholders(text)) - {"num"}:
                problems.append(f"{msgid!r}: placeholders {placeholders(text)} in {text!r}, "
                                f"the English has {sorted(wanted)}")
        problems += [f"{where[0]}: {i!r} uses a positional placeholder" for i in ids
                     if any(p.startswith("%") for p in placeholders(i))]
    stale = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id} - {
        (context, k[0] if isinstance(k, tuple) else k) for context, k in sources}
    problems += [f"{msgid!r} (context {context!r}) is in messages.po but no longer in the code"
                 for context, msgid in stale]
    problems += [f"{message.id!r}: {error}" for message, errors in catalog.check()
                 for error in errors]  # Babel's own python-format checks
    assert problems == []


def test_a_broken_translation_is_caught():
    """The placeholder check itself: a translation that drops or renames a value fails it."""
    assert placeholders("Conta: %(account)s") == ["account"]
    assert placeholders("Conta: %(conta)s") != placeholders("Account: %(account)s")
    assert placeholders("%d dias e %s") == ["%d", "%s"]


def test_catalogs_are_compiled_in_memory_and_no_generated_file_is_kept():
    assert list(LOCALE_DIR.rglob("*.mo")) == []
    tracked = subprocess.run(["git", "ls-files", "src/adsentinel/locale"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert not [path for path in tracked if path.endswith(".mo")]
    assert translations("pt_BR", "messages").gettext("Spend") == "Valor usado"


def test_messages_and_plurals_in_both_languages():
    pt, en = language("pt_BR"), language("en")
    assert pt._("Account: %(account)s", account="Loja") == "Conta: Loja"
    assert en._("Account: %(account)s", account="Loja") == "Account: Loja"
    one, two = ("%(num)d anomaly written to %(target)s", "%(num)d anomalies written to %(target)s")
    assert pt.ngettext(one, two, 1, target="t") == "1 anomalia gravada em t"
    assert pt.ngettext(one, two, 2, target="t") == "2 anomalias gravadas em t"
    assert en.ngettext(one, two, 2, target="t") == "2 anomalies written to t"
    assert pt._("") == ""  # not the catalog's header
    assert pt._("a message no catalog has") == "a message no catalog has"


@pytest.mark.parametrize(("locale", "money", "usd", "number", "percent", "day"), [
    ("pt_BR", "R$ 1.564,97", "US$ 1.564,97", "1.564,97", "1,23%", "06/12/2026"),
    ("en", "R$ 1,564.97", "$ 1,564.97", "1,564.97", "1.23%", "2026-12-06"),
])
def test_locale_formats(locale, money, usd, number, percent, day):
    lang = Language(locale)
    assert lang.money(1564.97, "BRL") == money
    assert lang.money(1564.97, "usd") == usd
    assert lang.number(1564.97) == number
    assert lang.percent(0.0123) == percent
    assert lang.day(date(2026, 12, 6)) == day


def test_metric_values_and_ratios_read_as_the_language_writes():
    pt, en = language("pt_BR"), language("en")
    assert pt.metric_value("cpl", 45.1, "BRL") == "R$ 45,10"
    assert pt.metric_value("ctr", 0.0125, "BRL") == "1,25%"
    assert pt.metric_value("impressions", 12345.0, "BRL") == "12.345"
    assert pt.metric_value("frequency", 2.5, "BRL") == "2,50"
    assert pt.metric_value("cpl", float("nan"), "BRL") == "n/d"
    assert (pt.ratio(45.1, 14.2), en.ratio(45.1, 14.2)) == ("3,2x", "3.2x")
    assert (pt.ratio(5.5, 10.0), en.ratio(5.5, 10.0)) == ("-45%", "-45%")
    assert (pt.ratio(3.0, 0.0), en.ratio(3.0, 0.0)) == ("novo", "new")


@pytest.mark.parametrize(("spelled", "locale"), [
    ("pt_BR", "pt_BR"), ("pt-BR", "pt_BR"), ("pt-br", "pt_BR"), ("pt", "pt_BR"),
    ("en", "en"), ("en_US", "en"), ("en-GB", "en"),
])
def test_locale_spellings(spelled, locale):
    assert parse_locale(spelled) == locale


@pytest.mark.parametrize("unknown", ["de", "xx", "", "fr_FR"])
def test_an_unknown_language_is_refused_by_name(unknown):
    with pytest.raises(ValueError, match=r"unknown language .* use one of en, pt_BR"):
        parse_locale(unknown)


def test_the_cli_language_comes_from_adsentinel_locale_then_posix_variables():
    assert locale_from_environment({}) == "en"
    assert locale_from_environment({"LANG": "pt_BR.UTF-8"}) == "pt_BR"
    assert locale_from_environment({"LANG": "C.UTF-8"}) == "en"
    assert locale_from_environment({"LANG": "de_DE.UTF-8"}) == "en"  # no catalog: English
    assert locale_from_environment({"LC_ALL": "en_US.UTF-8", "LANG": "pt_BR.UTF-8"}) == "en"
    assert locale_from_environment({"ADSENTINEL_LOCALE": "pt-BR", "LC_ALL": "en_US"}) == "pt_BR"
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        locale_from_environment({"ADSENTINEL_LOCALE": "fr"})


def test_importing_the_module_does_not_import_babel():
    """The CLI imports adsentinel.i18n at start-up; Babel loads only when a message needs it."""
    probe = ("import sys, adsentinel.i18n, adsentinel.cli; from adsentinel.cli.app import gettext; "
             "from adsentinel.config import load_settings; load_settings(locale='pt-BR'); "
             "gettext('error:'); "  # an English message under LANG=C.UTF-8 needs no Babel
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'babel'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "LANG": "C.UTF-8"}).stdout.strip()
    assert out == "[]"
