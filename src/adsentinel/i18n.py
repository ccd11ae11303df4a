"""Languages: which locale a person gets, and the gettext catalogs of each message domain.

Translations live in gettext ``.po`` catalogs under ``src/adsentinel/locale/<locale>/LC_MESSAGES/
<domain>.po`` (``dashboard`` for the web pages; other domains for other parts). They are compiled
in memory with Babel when first used, so no generated ``.mo`` file is kept in the repository and
an edited ``.po`` takes effect at the next start. English is the source language: its
"translation" is the message itself.

Numbers, money and dates are formatted with Babel's CLDR data for the chosen locale
(``R$ 1.564,97`` in pt-BR, ``R$1,564.97`` in English).
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "en"
#: the locales with catalogs, as Babel names them (``pt_BR``), the default first
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "pt_BR")
#: what each supported locale is called in its own language (for a language switch)
LOCALE_NAMES = {"en": "English", "pt_BR": "Português (Brasil)"}


def supported_locale(value: str | None) -> str | None:
    """``value`` (``pt-BR``, ``pt_br``, ``pt``, ``en-US`` ...) as one of
    :data:`SUPPORTED_LOCALES`, or ``None`` when it is none of them."""
    if not value:
        return None
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


def negotiate_locale(accept_language: str | None, chosen: str | None = None) -> str:
    """The locale of a request: ``chosen`` (e.g. a cookie set by the language switch) when it
    is supported, else the first supported language of an ``Accept-Language`` header in the
    order of its quality values, else :data:`DEFAULT_LOCALE`."""
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
    return DEFAULT_LOCALE


@lru_cache(maxsize=32)
def translations(locale: str, domain: str) -> gettext.NullTranslations:
    """The compiled catalog of ``domain`` in ``locale``; messages pass through unchanged for
    English or a locale without that catalog. Fuzzy entries are left out, as ``msgfmt`` does."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"
    if locale == DEFAULT_LOCALE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=domain)


__all__ = ["DEFAULT_LOCALE", "LOCALE_DIR", "LOCALE_NAMES", "SUPPORTED_LOCALES",
           "negotiate_locale", "supported_locale", "translations"]
