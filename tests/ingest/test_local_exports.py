"""Ads Manager exports as they are downloaded in Brazil, Spanish-speaking countries and the US:
delimiters, number formats, date orders, local headers, XLSX, summary rows, and every refusal."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adsentinel.config import load_settings
from adsentinel.db.models import AdAccount, DailyInsight, Entity
from adsentinel.errors import InputFileError
from adsentinel.ingest.csv_import import import_insights_csv

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIRST = date(2026, 10, 10)

PT_HEADER = ["Dia", "Identificação da conta", "Nome da conta", "Identificação da campanha",
             "Nome da campanha", "Identificação do conjunto de anúncios",
             "Nome do conjunto de anúncios", "Identificação do anúncio", "Nome do anúncio",
             "Valor usado (BRL)", "Impressões", "Alcance", "Cliques no link", "Resultados"]
EN_HEADER = ["Day", "Account ID", "Account name", "Campaign ID", "Campaign name", "Ad set ID",
             "Ad set name", "Ad ID", "Ad name", "Amount spent (BRL)", "Impressions", "Reach",
             "Link clicks", "Results"]
ES_HEADER = ["Día", "Identificador de la cuenta", "Nombre de la cuenta",
             "Identificador de la campaña", "Nombre de la campaña",
             "Identificador del conjunto de anuncios", "Nombre del conjunto de anuncios",
             "Identificador del anuncio", "Nombre del anuncio", "Importe gastado (EUR)",
             "Impresiones", "Alcance", "Clics en el enlace", "Resultados"]


@pytest.fixture(params=["sqlite"])
def db_settings(request, tmp_path):
    """SQLite for the reading and refusals (decided before any SQL); the tests marked
    ``BOTH_DATABASES`` run on PostgreSQL as well."""
    if request.param == "sqlite":
        yield load_settings(data_dir=tmp_path / "data")
        return
    url = request.getfixturevalue("fresh_postgres_url")
    yield load_settings(data_dir=tmp_path / "data", database_url=url)


BOTH_DATABASES = pytest.mark.parametrize("db_settings", ["sqlite", "postgresql"], indirect=True)


def _ad_days(days: int = 6, ads: int = 4) -> list[dict]:
    """Deterministic ad-days with spends above 1,000 (thousands separators) and 3 decimals
    nowhere: ad k on day d spends 1,000 + 37.5 k + 11.19 d."""
    rows = []
    for d in range(days):
        for k in range(ads):
            impressions = 1_000 * (k + 2) + 37 * d
            rows.append({"day": FIRST + timedelta(days=d), "campaign": f"1200{k // 2}",
                         "adset": f"2300{k // 2}", "ad": f"3400{k}",
                         "spend": round(1000 + 37.5 * k + 11.19 * d, 2),
                         "impressions": impressions, "reach": impressions * 3 // 4,
                         "clicks": impressions // 25, "leads": (k + d) % 4})
    return rows


def _cells(row: dict, account: str, *, day: str, money: str, count) -> list[str]:
    return [day, account, f"Loja {account}", row["campaign"], f"Campanha {row['campaign']}",
            row["adset"], f"Conjunto {row['adset']}", row["ad"], f"Anúncio {row['ad']}",
            money, count(row["impressions"]), count(row["reach"]), count(row["clicks"]),
            str(row["leads"]) if row["leads"] else ""]


def _pt_money(value: float) -> str:  # 1564.97 -> '1.564,97'
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _pt_count(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str,
           tail: str = "") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
        handle.write(tail)
    return path


def _totals(session_factory, account: str) -> dict[tuple[str, date], tuple]:
    """Per campaign and day: (spend in cents, impressions, reach, clicks, leads)."""
    with session_factory() as session:
        rows = session.execute(
            select(Entity.platform_id, DailyInsight.day, DailyInsight.spend,
                   DailyInsight.impressions, DailyInsight.reach, DailyInsight.clicks,
                   DailyInsight.leads)
            .join(DailyInsight, DailyInsight.entity_id == Entity.id)
            .join(AdAccount, AdAccount.id == Entity.account_id)
            .where(AdAccount.platform_account_id == account, Entity.level == "campaign")).all()
    return {(pid, day): (round(spend * 100), *counts) for pid, day, spend, *counts in rows}


def _expected_totals(rows: list[dict]) -> dict[tuple[str, date], tuple]:
    totals: dict[tuple[str, date], list] = {}
    for row in rows:
        total = totals.setdefault((row["campaign"], row["day"]), [0, 0, 0, 0, 0])
        for i, key in enumerate(("spend", "impressions", "reach", "clicks", "leads")):
            total[i] += round(row[key] * 100) if key == "spend" else row[key]
    return {key: tuple(value) for key, value in totals.items()}


@BOTH_DATABASES
def test_pt_br_export_imports_the_same_totals_as_its_english_twin(engine, session_factory,
                                                                  tmp_path):
    rows = _ad_days()
    english = _write(tmp_path / "en.csv", EN_HEADER, [
        _cells(r, "act_en", day=r["day"].isoformat(), money=f"{r['spend']:.2f}", count=str)
        for r in rows], ",")
    portuguese = _write(tmp_path / "pt.csv", PT_HEADER, [
        _cells(r, "act_pt", day=r["day"].strftime("%d/%m/%Y"), money=_pt_money(r["spend"]),
               count=_pt_count) for r in rows], ";")
    assert "1.037,50" in portuguese.read_text() and ";" in portuguese.read_text()

    import_insights_csv(english, engine=engine, now=NOW)
    summary = import_insights_csv(portuguese, engine=engine, now=NOW)

    assert summary.rows_imported == len(rows)
    expected = _expected_totals(rows)
    assert _totals(session_factory, "act_pt") == _totals(session_factory, "act_en") == expected
    with session_factory() as session:
        account = session.scalars(select(AdAccount).where(
            AdAccount.platform_account_id == "act_pt")).one()
        assert (account.name, account.currency) == ("Loja act_pt", "BRL")
        assert session.scalar(select(Entity.name).where(Entity.platform_id == "34001")) == \
            "Anúncio 34001"


def test_spanish_export_with_comma_delimiter_and_quoted_decimal_commas(engine, session_factory,
                                                                       tmp_path):
    rows = _ad_days(days=3, ads=2)
    path = _write(tmp_path / "es.csv", ES_HEADER, [
        _cells(r, "act_es", day=r["day"].strftime("%d/%m/%Y"), money=_pt_money(r["spend"]),
               count=_pt_count) for r in rows], ",")
    assert '"1.000,00"' in path.read_text()  # the csv module quotes what holds the delimiter
    import_insights_csv(path, engine=engine, now=NOW)
    assert _totals(session_factory, "act_es") == _expected_totals(rows)
    with session_factory() as session:
        assert session.scalars(select(AdAccount.currency)).one() == "EUR"


def test_us_thousands_separators(engine, session_factory, tmp_path):
    rows = _ad_days(days=2, ads=2)
    path = _write(tmp_path / "us.csv", EN_HEADER, [
        _cells(r, "act_us", day=r["day"].isoformat(), money=f"{r['spend']:,.2f}",
               count=lambda n: f"{n:,}") for r in rows], ",")
    assert '"1,048.69"' in path.read_text()
    import_insights_csv(path, engine=engine, now=NOW)
    assert _totals(session_factory, "act_us") == _expected_totals(rows)


def test_tab_separated_export(engine, session_factory, tmp_path):
    rows = _ad_days(days=2, ads=2)
    path = _write(tmp_path / "tab.tsv", EN_HEADER, [
        _cells(r, "act_tab", day=r["day"].isoformat(), money=f"{r['spend']:.2f}", count=str)
        for r in rows], "\t")
    import_insights_csv(path, engine=engine, now=NOW)
    assert _totals(session_factory, "act_tab") == _expected_totals(rows)


@BOTH_DATABASES
def test_xlsx_export_written_with_openpyxl(engine, session_factory, tmp_path):
    from openpyxl import Workbook

    rows = _ad_days(days=3, ads=2)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(PT_HEADER)
    for i, r in enumerate(rows):
        # dates as date cells and as dd/mm/aaaa text; money as numbers and as local text
        day = datetime.combine(r["day"], datetime.min.time()) if i % 2 else \
            r["day"].strftime("%d/%m/%Y")
        money = r["spend"] if i % 3 else _pt_money(r["spend"])
        sheet.append([day, "act_x", "Loja Centro", r["campaign"], "C", r["adset"], "S", r["ad"],
                      "A", money, r["impressions"], r["reach"], r["clicks"], r["leads"] or None])
    sheet.append([])
    path = tmp_path / "export.xlsx"
    workbook.save(path)

    summary = import_insights_csv(path, engine=engine, now=NOW)
    assert summary.rows_imported == len(rows)
    assert _totals(session_factory, "act_x") == _expected_totals(rows)


def test_summary_row_and_trailing_blank_lines_are_skipped(engine, session_factory, tmp_path):
    rows = _ad_days(days=2, ads=2)
    total = ["", "", "", "", "", "", "", "", "", _pt_money(sum(r["spend"] for r in rows)),
             _pt_count(sum(r["impressions"] for r in rows)), "", "", ""]
    path = _write(tmp_path / "pt.csv", PT_HEADER, [total] + [
        _cells(r, "act_pt", day=r["day"].strftime("%d/%m/%Y"), money=_pt_money(r["spend"]),
               count=_pt_count) for r in rows], ";", tail="\r\n\r\n;;;;\r\n")
    summary = import_insights_csv(path, engine=engine, now=NOW)
    assert [s.line for s in summary.skipped] == [2]  # the ";;;;" line is blank, not a summary
    assert summary.rows_imported == len(rows) and summary.invalid_rows == 0
    assert _totals(session_factory, "act_pt") == _expected_totals(rows)


def test_reporting_period_rows_import_when_they_cover_one_day(engine, session_factory, tmp_path):
    header = ["Início dos relatórios", "Término dos relatórios", "Identificação da campanha",
              "Identificação do conjunto de anúncios", "Identificação do anúncio",
              "Valor usado (BRL)", "Impressões", "Alcance", "Cliques no link", "Leads"]
    good = ["01/10/2026", "01/10/2026", "1", "2", "3", "10,50", "100", "90", "5", "1"]
    path = _write(tmp_path / "p.csv", header, [good], ";")
    import_insights_csv(path, engine=engine, account_name="Loja", now=NOW)
    with session_factory() as session:
        assert session.scalar(select(func.sum(DailyInsight.spend))) == pytest.approx(3 * 10.5)

    week = ["01/10/2026", "07/10/2026", "1", "2", "3", "73,50", "700", "90", "5", "1"]
    path = _write(tmp_path / "w.csv", header, [week], ";")
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, account_name="Loja", now=NOW)
    assert "w.csv:2 column 'date_end'" in str(caught.value)
    assert "not one day" in str(caught.value)


def _refusal(engine, path: Path, **options) -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, now=NOW, **options)
    return caught.value


def _one_row_file(tmp_path: Path, *, day="2026-10-01", spend="10.50", ad_name="Ad",
                  extra: list[list[str]] = ()) -> Path:
    rows = [[day, "act_1", "c", "s", "a", ad_name, spend, "100", "90", "5", "1"], *extra]
    return _write(tmp_path / "r.csv", ["date", "account_id", "campaign_id", "adset_id", "ad_id",
                                       "ad_name", "spend", "impressions", "reach", "clicks",
                                       "leads"], rows, ",")


def test_ambiguous_number_is_refused_with_its_line(engine, session_factory, tmp_path):
    path = _one_row_file(tmp_path, spend="1.234",
                         extra=[["2026-10-02", "act_1", "c", "s", "a", "Ad", "2", "1.500",
                                 "90", "5", "1"]])
    error = _refusal(engine, path)
    messages = [str(p) for p in error.problems]
    assert "r.csv:2 column 'spend': '1.234' is ambiguous (1.234 or 1234)" in messages[0]
    assert "r.csv:3 column 'impressions': '1.500' is ambiguous" in messages[1]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DailyInsight)) == 0


def test_a_decisive_value_elsewhere_in_the_file_decides_the_ambiguous_ones(engine,
                                                                           session_factory,
                                                                           tmp_path):
    path = _one_row_file(tmp_path, spend="1.234",
                         extra=[["2026-10-02", "act_1", "c", "s", "a", "Ad", "3,50", "100", "90",
                                 "5", "1"]])
    import_insights_csv(path, engine=engine, now=NOW)
    with session_factory() as session:
        spends = sorted(session.scalars(select(DailyInsight.spend).join(Entity).where(
            Entity.level == "ad")))
    assert spends == [3.5, 1234.0]


def test_a_column_mixing_both_formats_is_refused(engine, tmp_path):
    path = _one_row_file(tmp_path, spend="1.564,97",
                         extra=[["2026-10-02", "act_1", "c", "s", "a", "Ad", "1,054.03", "100",
                                 "90", "5", "1"]])
    error = _refusal(engine, path)
    assert ("r.csv:3 column 'spend': '1,054.03' is not a number in this column's format "
            "(decimal comma, as '1.564,97' on line 2)") in str(error)


def test_unreadable_header_names_the_delimiter_tried_and_the_line(engine, tmp_path):
    path = tmp_path / "pipes.csv"
    path.write_text("Dia|Identificação da campanha|Valor usado (BRL)\n01/10/2026|1|10,50\n",
                    encoding="utf-8")
    error = _refusal(engine, path, account_name="Loja")
    assert error.problems[0].file == str(path) and error.problems[0].line == 1
    assert "line 1 was split on ',' (comma) into 1 column(s)" in str(error)
    assert "';' (semicolon), tab found fewer known columns" in str(error)


@pytest.mark.parametrize(("day", "message"), [
    ("1969-12-31", "1969-12-31 is before 1970-01-01"),
    ("0001-01-01", "0001-01-01 is before 1970-01-01"),
    ("31/12/1969", "1969-12-31 is before 1970-01-01"),
    ("2026-11-26", "2026-11-26 is in the future for this account"),
    ("9999-12-31", "9999-12-31 is in the future for this account"),
])
def test_dates_outside_1970_to_today_are_refused(engine, session_factory, tmp_path, day, message):
    error = _refusal(engine, _one_row_file(tmp_path, day=day))
    assert any(str(p).startswith(f"{tmp_path / 'r.csv'}:2 column 'date': ") and message in str(p)
               for p in error.problems), str(error)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AdAccount)) == 0


@BOTH_DATABASES
def test_today_is_measured_in_the_accounts_timezone(engine, session_factory, tmp_path):
    """At 01:00 UTC on the 25th it is still the 24th in São Paulo: the 25th is its future."""
    import_insights_csv(_one_row_file(tmp_path, day="2026-10-01"), engine=engine, now=NOW)
    with session_factory() as session:
        session.scalars(select(AdAccount)).one().timezone = "America/Sao_Paulo"
        session.commit()
    early = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    with pytest.raises(InputFileError, match="2026-11-25 is in the future"):
        import_insights_csv(_one_row_file(tmp_path, day="2026-11-25"), engine=engine, now=early)


@pytest.mark.parametrize(("name", "code"), [
    ("Ad\nSubject: hi", "000A"), ("A\rd", "000D"), ("A\x00d", "0000"), ("Ad\tname", "0009"),
    ("Ad\x1b[31m", "001B"), ("A\x85d", "0085"), ("Ad\x7f", "007F")])
def test_control_characters_in_names_are_refused(engine, session_factory, tmp_path, name, code):
    error = _refusal(engine, _one_row_file(tmp_path, ad_name=name))
    problem = error.problems[0]
    assert (problem.line, problem.column) == (2, "ad_name")
    assert f"contains a control character (U+{code})" in problem.message
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Entity)) == 0


@BOTH_DATABASES
def test_control_character_in_an_id_and_in_the_account_option(engine, tmp_path):
    path = _write(tmp_path / "id.csv", ["date", "campaign_id", "adset_id", "ad_id", "spend",
                                        "impressions", "clicks", "leads", "reach"],
                  [["2026-10-01", "c\x0b1", "s", "a", "1", "10", "1", "0", "5"]], ",")
    error = _refusal(engine, path, account_name="Loja")
    assert "id.csv:2 column 'campaign_id': contains a control character (U+000B)" in str(error)
    error = _refusal(engine, path, account_name="Lo\nja")
    assert "--account contains a control character (U+000A)" in str(error)


@pytest.mark.slow
def test_the_cli_imports_a_pt_br_export_and_exits_65_on_a_refused_one(tmp_path):
    rows = _ad_days(days=2, ads=2)
    good = _write(tmp_path / "pt.csv", PT_HEADER, [
        _cells(r, "act_pt", day=r["day"].strftime("%d/%m/%Y"), money=_pt_money(r["spend"]),
               count=_pt_count) for r in rows], ";")
    bad = _one_row_file(tmp_path, spend="1.234")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")},
           "ADSENTINEL_DATA_DIR": str(tmp_path / "data")}
    ok = subprocess.run([sys.executable, "-m", "adsentinel", "import", str(good)], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "rows imported" in ok.stdout
    refused = subprocess.run([sys.executable, "-m", "adsentinel", "import", str(bad)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 65, refused.stderr
    assert "r.csv:2column'spend':'1.234'isambiguous" in "".join(refused.stderr.split())


def test_damaged_workbooks_are_refused_with_a_clear_error(engine, tmp_path):
    """Cut and bit-flipped XLSX files (zip, zlib and XML errors inside openpyxl) are refused."""
    import io
    import random

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(PT_HEADER)
    for k in range(30):
        workbook.active.append(["01/10/2026", "act_1", "L", "1", "C", "2", "S", str(k), "A",
                                10.5, 100, 90, 5, 1])
    buffer = io.BytesIO()
    workbook.save(buffer)
    data, rng, path = buffer.getvalue(), random.Random(3), tmp_path / "damaged.xlsx"
    outcomes = []
    for trial in range(60):
        damaged = bytearray(data[:rng.randint(0, len(data))] if trial % 2 else data)
        for _ in range(0 if trial % 2 else rng.randint(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        try:
            import_insights_csv(path, engine=engine, now=NOW)
            outcomes.append("imported")
        except InputFileError as error:
            assert error.hint and str(path) in str(error)
            outcomes.append("refused")
    assert outcomes.count("refused") >= 55, outcomes
