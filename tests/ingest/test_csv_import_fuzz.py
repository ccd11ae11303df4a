"""Property-based: whatever the file holds, the import either stores every line as it reads, or
raises a located InputFileError (file, line, column, what to do) and changes no table.

One database per test is reused across all its examples (earlier imports restate, conflict with
and extend what later ones find); "nothing half-written" is checked by comparing the tables
before and after each refused import (``fuzz_inputs.CsvImportTrials``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings

from adsentinel.config import load_settings
from adsentinel.db.engine import open_database
from fuzz_inputs import CsvCase, CsvImportTrials, csv_cases

HEADER = b"date,account_id,campaign_id,adset_id,ad_id,spend,impressions,clicks,leads,reach"
ROW = b"2026-11-20,act_1,c1,s1,a1,1.50,100,10,1,50"
NO_ACCOUNT = (b"date,campaign_id,adset_id,ad_id,spend,impressions,clicks,leads,reach\n"
              b"2026-11-20,c1,s1,a1,1.50,100,10,1,50\n")


def _row(**cells: bytes) -> bytes:
    names = HEADER.decode().split(",")
    values = dict(zip(names, ROW.split(b","), strict=True))
    values.update({name: value for name, value in cells.items()})
    return b",".join(values[name] for name in names)


#: files (and --account names) that crashed the importer once (issue #9), kept as examples
REGRESSIONS = [
    CsvCase(HEADER + b"\n" + _row(impressions="²".encode()) + b"\n"),  # isdigit() but not int()
    CsvCase(HEADER + b"\n" + _row(reach=b"9" * 5000) + b"\n"),  # over int()'s 4300 digits
    CsvCase(HEADER + b"\n" + _row(impressions=b"99999999999999999999") + b"\n"),  # over BIGINT
    CsvCase(HEADER + b"\n" + _row(impressions=b"1e300", clicks=b"0", reach=b"0") + b"\n"),
    CsvCase(HEADER + b"\n" + _row(spend=b"1e308") + b"\n" + _row(ad_id=b"a2", spend=b"1e308")
            + b"\n"),  # two finite spends whose ad set sum overflows
    CsvCase(b"x" * 140_000 + b"," + HEADER + b"\n" + ROW + b"\n"),  # csv.Error in the header
    CsvCase(HEADER + b",campaign_name\n" + ROW + b"," + b"n" * 401 + b"\n"),  # over VARCHAR(400)
    CsvCase(HEADER + b",account_name\n" + ROW + b"," + b"n" * 201 + b"\n"),  # over VARCHAR(200)
    CsvCase(HEADER + b"\n" + _row(account_id=b"act_" + b"9" * 70) + b"\n"),  # over VARCHAR(64)
    CsvCase(HEADER + b",currency\n" + ROW + ",ßab".encode() + b"\n"),  # 'ß'.upper() == 'SS'
    CsvCase(HEADER + b"\n" + _row(ad_id=b"a\x001") + b"\n"),  # PostgreSQL refuses NUL
    CsvCase(HEADER + b",ad_name\n" + ROW + b",a\x00b\n"),
    CsvCase(HEADER + b"\n" + _row(date=b"2026-W47-1") + b"\n"),  # an ISO week, not YYYY-MM-DD
    CsvCase(NO_ACCOUNT, account=""),  # IntegrityError: ad_accounts.name NOT NULL
    CsvCase(NO_ACCOUNT, account="n" * 201),  # over VARCHAR(200) on PostgreSQL
    CsvCase(NO_ACCOUNT, account="a\x00b"),
    CsvCase(NO_ACCOUNT, account="caf\udce9"),  # a byte that is not UTF-8: UnicodeEncodeError
    # IntegrityError: account b_key, without a name, would be named 'b_key', which a_named is
    CsvCase(b"date,account_id,account_name,campaign_id,adset_id,ad_id,spend,impressions,clicks,"
            b"leads,reach\n2026-11-20,a_named,b_key,c1,s1,a1,1,10,1,0,5\n"
            b"2026-11-20,b_key,,c1,s1,a1,1,10,1,0,5\n"),
    # not a crash: rows with a blank account id go into the --account account (a checker bug)
    CsvCase(HEADER + b"\n" + _row(account_id=b"") + b"\n", account="New Co"),
    # issue 17: year 1 imported, then training, detection and charts raised OverflowError
    CsvCase(HEADER + b"\n" + _row(date=b"0001-01-01") + b"\n" + ROW + b"\n"),
    CsvCase(HEADER + b"\n" + _row(date=b"1970-01-01") + b"\n" + ROW + b"\n"),
    # issue 17: a line break in a name went into the alert e-mail's subject
    CsvCase(HEADER + b",ad_name\n" + ROW + b',"Ad\nSubject: x"\n'),
    # issue 18: a Brazilian export, its summary row and its trailing blank lines
    CsvCase("Dia;Identificação da conta;Identificação da campanha;Identificação do conjunto de "
            "anúncios;Identificação do anúncio;Valor usado (BRL);Impressões;Cliques no link;"
            "Resultados;Alcance\r\n;;;;;1.564,97;12.345;;;\r\n20/11/2026;act_1;c1;s1;a1;"
            "1.564,97;12.345;10;1;50\r\n\r\n;;;;;;;;;\r\n".encode(), delimiter=";"),
    CsvCase(HEADER + b"\n" + _row(spend=b"1.234") + b"\n"),  # ambiguous: refused
]


def _with_regressions(test):
    for case in reversed(REGRESSIONS):
        test = example(case=case)(test)
    return test


def _fuzz(examples: int):
    return hypothesis_settings(
        max_examples=examples, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large])


@pytest.fixture
def trials(engine, db_settings, tmp_path):
    """Import trials on the ``engine`` fixture's database (SQLite and PostgreSQL), each accepted
    file then trained, detected and charted."""
    return CsvImportTrials(engine, tmp_path / "in.csv", db_settings)


@pytest.fixture
def sqlite_trials(settings, tmp_path):
    engine = open_database(settings)
    yield CsvImportTrials(engine, tmp_path / "in.csv", settings)
    engine.dispose()


@pytest.fixture
def postgres_trials(fresh_postgres_url, tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", database_url=fresh_postgres_url)
    engine = open_database(settings)
    yield CsvImportTrials(engine, tmp_path / "in.csv", settings)
    engine.dispose()


@_fuzz(60)
@_with_regressions
@given(case=csv_cases())
def test_any_file_imports_cleanly_or_not_at_all(trials, case):
    outcome = trials.check(case)
    assert outcome.kind != "crash", outcome.detail


@pytest.mark.slow
@_fuzz(3000)
@_with_regressions
@given(case=csv_cases())
def test_thousands_of_files_on_sqlite(sqlite_trials, case):
    outcome = sqlite_trials.check(case)
    assert outcome.kind != "crash", outcome.detail


@pytest.mark.slow
@pytest.mark.postgres
@_fuzz(600)
@_with_regressions
@given(case=csv_cases())
def test_hundreds_of_files_on_postgresql(postgres_trials, case):
    """PostgreSQL stages with COPY into typed temporary tables: its own failure modes."""
    outcome = postgres_trials.check(case)
    assert outcome.kind != "crash", outcome.detail
