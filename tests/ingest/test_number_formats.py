"""The number and date format rules, as pure functions (no file, no database)."""

from __future__ import annotations

import pytest

from adsentinel.ingest.number_formats import (
    DECIMAL_COMMA,
    DECIMAL_POINT,
    FormatDecisions,
    FormatEvidence,
    formats_of,
    read_as,
)


@pytest.mark.parametrize(("text", "formats", "point", "comma"), [
    ("1.564,97", (DECIMAL_COMMA,), None, "1564.97"),
    ("1,054.03", (DECIMAL_POINT,), "1054.03", None),
    ("45,10", (DECIMAL_COMMA,), None, "45.10"),
    ("0.5", (DECIMAL_POINT,), "0.5", None),
    ("0.500", (DECIMAL_POINT,), "0.500", None),  # a leading 0 is no thousands group
    ("1.234", (DECIMAL_POINT, DECIMAL_COMMA), "1.234", "1234"),
    ("1,054", (DECIMAL_POINT, DECIMAL_COMMA), "1054", "1.054"),
    ("1.234.567", (DECIMAL_COMMA,), None, "1234567"),
    ("1,234,567.5", (DECIMAL_POINT,), "1234567.5", None),
    ("-1,5", (DECIMAL_COMMA,), None, "-1.5"),
    ("1234", (), "1234", "1234"),
    ("1.2.3", (), None, None),
    ("1e3", (), None, None),
    ("١٢,٥", (), None, None),  # Arabic-Indic digits are not read as grouped numbers
])
def test_formats_and_readings(text, formats, point, comma):
    assert formats_of(text) == formats
    assert (read_as(text, DECIMAL_POINT), read_as(text, DECIMAL_COMMA)) == (point, comma)


def _decisions(evidence: FormatEvidence | None = None, day_first: bool = False):
    scans = []

    def scan() -> FormatEvidence:
        scans.append(1)
        return evidence or FormatEvidence()

    return FormatDecisions(scan, day_first_by_default=day_first), scans


def test_unambiguous_values_decide_as_they_stream_without_reading_the_file_again():
    formats, scans = _decisions()
    assert formats.number_text("spend", "45,10", 2) == ("45.10", None)
    assert formats.number_text("spend", "1.234", 3) == ("1234", None)
    assert formats.date_text("25/10/2026", 2) == ("2026-10-25", None)
    assert formats.date_text("01/10/2026", 3) == ("2026-10-01", None)
    assert scans == []


def test_an_ambiguous_value_first_reads_the_whole_file_once():
    evidence = FormatEvidence()
    evidence.see_number("spend", "1.234", 2)  # ambiguous: no evidence
    evidence.see_number("spend", "3,50", 9)
    evidence.see_date("10/25/2026", 7)
    formats, scans = _decisions(evidence)
    assert formats.number_text("impressions", "12.345", 2) == ("12345", None)  # the file's
    assert formats.number_text("spend", "1.234", 2) == ("1234", None)
    assert formats.date_text("10/01/2026", 2) == ("2026-10-01", None)  # month-first, line 7
    assert scans == [1]


def test_nothing_decides_then_ambiguous_values_and_dates_are_refused():
    formats, scans = _decisions()
    canonical, why = formats.number_text("spend", "1.234", 2)
    assert canonical is None and "'1.234' is ambiguous (1.234 or 1234)" in why
    canonical, why = formats.date_text("01/10/2026", 2)
    assert canonical is None and "could be dd/mm/yyyy or mm/dd/yyyy" in why
    assert formats.date_text("05/05/2026", 3) == ("2026-05-05", None)  # the same either way
    assert scans == [1]


def test_a_portuguese_or_spanish_date_header_makes_undecided_dates_day_first():
    formats, _ = _decisions(day_first=True)
    assert formats.date_text("01/10/2026", 2) == ("2026-10-01", None)


def test_a_value_against_the_decided_format_is_refused_with_what_decided_it():
    formats, _ = _decisions()
    formats.number_text("spend", "1.564,97", 2)
    canonical, why = formats.number_text("spend", "0.5", 3)
    assert canonical is None
    assert why == "'0.5' is not a number in this column's format (decimal comma, as " \
                  "'1.564,97' on line 2)"
    formats.date_text("25/10/2026", 2)
    assert formats.date_text("10/25/2026", 3)[1] == \
        "'10/25/2026' is not a date in this file's order (dd/mm/yyyy, as '25/10/2026' on line 2)"
    assert formats.date_text("31/02/2026", 4) == (None, "'31/02/2026' is not a date (dd/mm/yyyy)")
