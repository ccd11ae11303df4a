"""Which headers mean what: the canonical import format and Meta Ads Manager exports in English,
Portuguese (Brazil) and Spanish.

Headers are matched case-, accent- and space-insensitively (``Identificação da campanha`` ==
``identificacao  da CAMPANHA``). A Meta export's ``Amount spent (BRL)`` / ``Valor usado (BRL)`` /
``Importe gastado (BRL)`` also tells the account currency.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from adsentinel.errors import InputProblem

#: canonical field -> accepted headers (normalised: no accents, lower case, single spaces),
#: first match wins; English, then Portuguese, then Spanish
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "dia", "reporting starts", "inicio dos relatorios",
             "inicio del informe", "date start", "date_start"),
    "date_end": ("reporting ends", "termino dos relatorios", "fin del informe", "date stop",
                 "date_stop"),
    "account_id": ("account_id", "account id", "identificacao da conta", "id da conta",
                   "identificador de la cuenta"),
    "account_name": ("account_name", "account name", "nome da conta", "nombre de la cuenta"),
    "currency": ("currency", "moeda", "divisa"),
    "campaign_id": ("campaign_id", "campaign id", "identificacao da campanha", "id da campanha",
                    "identificador de la campana"),
    "campaign_name": ("campaign_name", "campaign name", "nome da campanha",
                      "nombre de la campana"),
    "adset_id": ("adset_id", "ad set id", "adset id", "identificacao do conjunto de anuncios",
                 "id do conjunto de anuncios", "identificador del conjunto de anuncios"),
    "adset_name": ("adset_name", "ad set name", "adset name", "nome do conjunto de anuncios",
                   "nombre del conjunto de anuncios"),
    "ad_id": ("ad_id", "ad id", "identificacao do anuncio", "id do anuncio",
              "identificador del anuncio"),
    "ad_name": ("ad_name", "ad name", "nome do anuncio", "nombre del anuncio"),
    "spend": ("spend", "amount spent", "valor usado", "valor gasto", "importe gastado"),
    "impressions": ("impressions", "impressoes", "impresiones"),
    "clicks": ("clicks", "link clicks", "clicks (all)", "cliques no link", "cliques (todos)",
               "clics en el enlace", "clics (todos)"),
    "leads": ("leads", "results", "resultados", "clientes potenciales"),
    "reach": ("reach", "alcance"),
    "conversions": ("conversions", "conversoes", "conversiones"),
    "revenue": ("revenue", "purchases conversion value", "valor de conversao de compras",
                "valor de conversion de compras"),
}
REQUIRED = ("date", "campaign_id", "adset_id", "ad_id", "spend", "impressions", "clicks", "leads",
            "reach")
COUNT_FIELDS = ("impressions", "clicks", "leads", "reach")
#: date headers of exports written day-first (dd/mm/yyyy) when no date proves the order
DAY_FIRST_DATE_HEADERS = frozenset({"dia", "inicio dos relatorios", "inicio del informe"})
#: the same day range (reporting starts) headers: their rows must cover one day each
PERIOD_START_HEADERS = frozenset({"reporting starts", "inicio dos relatorios",
                                  "inicio del informe"})

_SPEND_WITH_CURRENCY = re.compile(
    r"^(amount spent|valor usado|valor gasto|importe gastado) \(([a-z]{3})\)$")


def normalise_header(header: str) -> str:
    """``' Identificação  da Campanha '`` -> ``'identificacao da campanha'``."""
    decomposed = unicodedata.normalize("NFKD", header)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.strip().casefold().split())


@dataclass(frozen=True)
class ColumnLayout:
    """Where each canonical field sits in the file's rows (``None`` = absent), and what the
    headers say about the file: the currency, day-first dates, one row per reporting period."""

    index: dict[str, int]
    currency_from_header: str | None
    day_first_dates: bool = False
    dates_are_periods: bool = False

    def position(self, field: str) -> int | None:
        return self.index.get(field)


def resolve_columns(headers: list[str], file: str,
                    line: int = 1) -> tuple[ColumnLayout, list[InputProblem]]:
    """Map a header row (on ``line``) onto the canonical fields; report missing or ambiguous
    columns."""
    normalised = [normalise_header(h) for h in headers]
    problems: list[InputProblem] = []
    index: dict[str, int] = {}
    currency = None
    for position, name in enumerate(normalised):
        match = _SPEND_WITH_CURRENCY.match(name)
        if match:
            currency = match.group(2).upper()
            normalised[position] = match.group(1)
    for field, accepted in ALIASES.items():
        for alias in accepted:
            if alias in normalised:
                index[field] = normalised.index(alias)
                break
    seen: dict[str, int] = {}
    for position, name in enumerate(normalised):
        if name and name in seen:
            problems.append(InputProblem(file, line, headers[position],
                                         f"column appears twice (columns {seen[name] + 1} and "
                                         f"{position + 1})"))
        seen[name] = position
    for field in REQUIRED:
        if field not in index:
            headers_read = ", ".join(repr(a) for a in ALIASES[field])
            problems.append(InputProblem(file, line, field, f"missing column {field!r} "
                                         f"(accepted headers: {headers_read})"))
    date_header = normalised[index["date"]] if "date" in index else ""
    layout = ColumnLayout(index=index, currency_from_header=currency,
                          day_first_dates=date_header in DAY_FIRST_DATE_HEADERS,
                          dates_are_periods=date_header in PERIOD_START_HEADERS)
    return layout, problems


def recognised_columns(headers: list[str]) -> int:
    """How many canonical fields a header row names (to choose the delimiter that reads it)."""
    names = {normalise_header(h) for h in headers}
    names |= {m.group(1) for m in map(_SPEND_WITH_CURRENCY.match, names) if m}
    return sum(1 for accepted in ALIASES.values() if names.intersection(accepted))
