"""Languages: which locale a person gets, and the gettext catalogs of each message domain.

Translations live in gettext ``.po`` catalogs under ``src/adsentinel/locale/<locale>/LC_MESSAGES/
<domain>.po`` (``dashboard`` for the web pages; other domains for other parts). They are compiled
in memory with Babel when first used, so no generated ``.mo`` file is kept in the repository and
an edited ``.po`` takes effect at the next start. English is the source language: its
"translation" is the message itself.

Numbers, money and dates are formatted with Babel's CLDR data for the chosen locale
(``R$ 1.564,97`` in pt-BR, ``R$ 1,564.97`` in English) through :class:`Language`, which also
carries a domain's messages: ``language("pt_BR")._("Severity: %(severity)s", severity="high")``.
Every message is written with named ``%(name)s`` placeholders, as Jinja's ``_()`` takes them, so
Python code and templates share one convention. The ``messages`` domain holds alerts, the report
and the CLI.

Babel is imported only when a catalog or a format is first needed: a CLI command that prints
nothing localised does not pay for it.
"""

from __future__ import annotations

import gettext
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from io import BytesIO
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "en"
#: the locales with catalogs, as Babel names them (``pt_BR``), the default first
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "pt_BR")
#: what each supported locale is called in its own language (for a language switch)
LOCALE_NAMES = {"en": "English", "pt_BR": "Português (Brasil)"}
#: alerts, the report and the CLI
MESSAGES_DOMAIN = "messages"
#: environment variables read for the CLI's language, the first one set decides
LANGUAGE_VARIABLES = ("ADSENTINEL_LOCALE", "LC_ALL", "LC_MESSAGES", "LANG")
#: dates as each language writes them: ISO in English (unambiguous), dd/mm/aaaa in Brazil
_DATE_PATTERNS = {"en": "yyyy-MM-dd", "pt_BR": "dd/MM/yyyy"}
_MONEY_METRICS = frozenset({"spend", "cpc", "cpm", "cpl"})
_RATE_METRICS = frozenset({"ctr", "conversion_rate"})
_COUNT_METRICS = frozenset({"impressions", "leads", "clicks", "reach"})


def N_(message: str) -> str:  # gettext's conventional name
    """Mark ``message`` for the catalogs without translating it (module-level constants are
    translated where they are shown, with :meth:`Language.gettext`)."""
    return message


def supported_locale(value: str | None) -> str | None:
    """``value`` (``pt-BR``, ``pt_br``, ``pt``, ``en-US`` ...) as one of
    :data:`SUPPORTED_LOCALES`, or ``None`` when it is none of them."""
    if not value:
        return None
    from babel import Locale, UnknownLocaleError

    try:
        asked = Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    for supported in SUPPORTED_LOCALES:
        if str(asked) == supported:
            return supported
    for supported in SUPPORTED_LOCALES:  # pt -> pt_BR, en_GB -> en
        if asked.language == Locale.parse(supported).language:
            return supported
    return None


def negotiate_locale(accept_language: str | None, chosen: str | None = None,
                     default: str = DEFAULT_LOCALE) -> str:
    """The locale of a request: ``chosen`` (e.g. a cookie set by the language switch) when it
    is supported, else the first supported language of an ``Accept-Language`` header in the
    order of its quality values, else ``default`` (the ``LOCALE`` setting, for a server)."""
    return requested_locale(accept_language, chosen) or default


def requested_locale(accept_language: str | None, chosen: str | None = None) -> str | None:
    """The supported locale a request asks for (``chosen``, else its ``Accept-Language``, as
    :func:`negotiate_locale`), or None when it asks for none of them."""
    if (explicit := supported_locale(chosen)) is not None:
        return explicit
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag))
    for _quality, _position, tag in sorted(ranked):
        if (found := supported_locale(tag)) is not None:
            return found
    return None


def parse_locale(value: str) -> str:
    """``value`` as one of :data:`SUPPORTED_LOCALES` (see :func:`supported_locale`); a
    ``ValueError`` naming the value and the supported locales for anything else."""
    found = _posix_locale(value or "") or supported_locale(value)  # the first without Babel
    if found is None:
        raise ValueError(f"unknown language {value!r}: use one of {', '.join(SUPPORTED_LOCALES)}")
    return found


def locale_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The CLI's locale: ``ADSENTINEL_LOCALE``, else the POSIX ``LC_ALL`` / ``LC_MESSAGES`` /
    ``LANG`` (the first one set decides, as in gettext); a language without a catalog (``C``,
    ``de_DE``...) means English. ``ADSENTINEL_LOCALE`` set to an unsupported value is a
    ``ValueError`` (that language was asked for by name). The common values (``C``, ``en_*``,
    ``pt_*``) are read without importing Babel: every CLI command asks."""
    environ = os.environ if environ is None else environ
    chosen = (environ.get("ADSENTINEL_LOCALE") or "").strip()
    if chosen:
        return _posix_locale(chosen) or parse_locale(chosen)
    for variable in LANGUAGE_VARIABLES[1:]:
        value = (environ.get(variable) or "").strip()
        if value:
            value = value.split(".")[0].split("@")[0]
            return _posix_locale(value) or supported_locale(value) or DEFAULT_LOCALE
    return DEFAULT_LOCALE


#: a POSIX locale's language -> the supported locale, for the values every machine sets
_POSIX_LANGUAGES = {"c": "en", "posix": "en", "en": "en", "pt": "pt_BR"}


def _posix_locale(value: str) -> str | None:
    """``C.UTF-8`` -> ``en``, ``pt_BR.UTF-8`` -> ``pt_BR``; None for anything else."""
    language = value.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return _POSIX_LANGUAGES.get(language)


def catalog_path(locale: str, domain: str) -> Path:
    """The ``.po`` file of ``domain`` in ``locale``."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=32)
def translations(locale: str, domain: str) -> gettext.NullTranslations:
    """The compiled catalog of ``domain`` in ``locale``; messages pass through unchanged for
    English or a locale without that catalog. Fuzzy entries are left out, as ``msgfmt`` does."""
    path = catalog_path(locale, domain)
    if locale == DEFAULT_LOCALE or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=domain)


@dataclass(frozen=True)
class Language:
    """The messages of one domain and the number, money and date formats of one locale
    (``locale`` is one of :data:`SUPPORTED_LOCALES`)."""

    locale: str = DEFAULT_LOCALE
    domain: str = MESSAGES_DOMAIN

    def gettext(self, message: str, /, **variables: object) -> str:
        """``message`` translated, its ``%(name)s`` placeholders filled from ``variables``."""
        if not message:  # gettext("") is the catalog's header
            return message
        text = translations(self.locale, self.domain).gettext(message)
        return text % variables if variables else text

    _ = gettext

    def pgettext(self, context: str, message: str, /, **variables: object) -> str:
        """``message`` translated as the catalog's entry of ``context`` (``msgctxt``): the same
        English words, translated differently where they are used differently."""
        text = translations(self.locale, self.domain).pgettext(context, message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, num: int, /, **variables: object) -> str:
        """The form of the message for ``num`` (shown by ``%(num)d``), filled in."""
        text = translations(self.locale, self.domain).ngettext(singular, plural, num)
        return text % {"num": num, **variables}

    def money(self, amount: float, currency: str) -> str:
        """``R$ 1.564,97`` (pt_BR) / ``R$ 1,564.97`` (en): the currency's symbol, a space and the
        amount with the currency's decimals; a code Babel does not know is written as it is."""
        from babel.numbers import format_currency

        return format_currency(amount, currency.upper(), format="¤ #,##0.00", locale=self.locale)

    def number(self, value: float, decimals: int = 2) -> str:
        """``1.564,97`` (pt_BR) / ``1,564.97`` (en), with ``decimals`` fraction digits."""
        from babel.numbers import format_decimal

        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, fraction: float, decimals: int = 2) -> str:
        """``0.0123`` -> ``1,23%`` (pt_BR) / ``1.23%`` (en)."""
        from babel.numbers import format_percent

        pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
        return format_percent(fraction, format=pattern, locale=self.locale)

    def day(self, value: date) -> str:
        """``06/12/2026`` (pt_BR) / ``2026-12-06`` (en)."""
        from babel.dates import format_date

        return format_date(value, _DATE_PATTERNS.get(self.locale, "yyyy-MM-dd"),
                           locale=self.locale)

    def metric_value(self, metric: str, value: float | None, currency: str) -> str:
        """A metric's value as a marketer reads it: money, percent, count or plain ratio."""
        if value is None or not math.isfinite(value):
            return self._("n/a")
        if metric in _MONEY_METRICS:
            return self.money(value, currency)
        if metric in _RATE_METRICS:
            return self.percent(value)
        if metric in _COUNT_METRICS:
            return self.number(value, decimals=0)
        return self.number(value)

    def ratio(self, actual: float | None, expected: float | None) -> str:
        """``3.2x`` (pt_BR ``3,2x``) above expected, ``-45%`` below, ``new`` when nothing was
        expected."""
        if (actual is None or expected is None or not math.isfinite(actual)
                or not math.isfinite(expected) or expected <= 0):
            return self._("new")
        ratio = actual / expected
        if ratio >= 1:
            return self.number(ratio, decimals=1) + "x"
        change = self.percent(round(100 * (ratio - 1)) / 100, decimals=0)
        return change if change.startswith("-") else "+" + change  # -0.4 % rounds to +0%


@lru_cache(maxsize=16)
def language(locale: str | None = None, domain: str = MESSAGES_DOMAIN) -> Language:
    """The :class:`Language` of ``locale`` (any spelling :func:`parse_locale` takes; None or
    empty: :data:`DEFAULT_LOCALE`)."""
    if not locale:
        return Language(DEFAULT_LOCALE, domain)
    return Language(locale if locale in SUPPORTED_LOCALES else parse_locale(locale), domain)


def cli_language() -> Language:
    """The CLI's language, from the environment (:func:`locale_from_environment`)."""
    return language(locale_from_environment())


__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_VARIABLES",
    "LOCALE_DIR",
    "LOCALE_NAMES",
    "MESSAGES_DOMAIN",
    "N_",
    "SUPPORTED_LOCALES",
    "Language",
    "catalog_path",
    "cli_language",
    "language",
    "locale_from_environment",
    "negotiate_locale",
    "parse_locale",
    "requested_locale",
    "supported_locale",
    "translations",
]
