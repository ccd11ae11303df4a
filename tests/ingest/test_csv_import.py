"""CSV import on SQLite and PostgreSQL: good files, every kind of bad line, restatement."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from adsentinel.db.models import AdAccount, DailyInsight, Entity
from adsentinel.errors import InputFileError
from adsentinel.ingest.csv_import import import_insights_csv
from factories import insight_rows, write_csv

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _days(session_factory, level: str) -> dict[tuple[str, date], DailyInsight]:
    with session_factory() as session:
        rows = session.execute(
            select(Entity.platform_id, DailyInsight)
            .join(DailyInsight, DailyInsight.entity_id == Entity.id)
            .where(Entity.level == level)
        ).all()
        return {(pid, row.day): row for pid, row in rows}


def _count(session_factory, model) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_import_builds_hierarchy_and_aggregates(engine, session_factory, tmp_path):
    path = write_csv(tmp_path / "in.csv", insight_rows(days=3, ads=8))
    summary = import_insights_csv(path, engine=engine, now=NOW)

    assert summary.rows_imported == 24 and summary.days_new == 24
    assert summary.entities_created == {"campaign": 2, "adset": 4, "ad": 8}
    assert (summary.first_day, summary.last_day) == (date(2026, 9, 1), date(2026, 9, 3))
    with session_factory() as session:
        ad = session.scalars(select(Entity).where(Entity.platform_id == "a5")).one()
        assert ad.parent.platform_id == "s2" and ad.parent.parent.platform_id == "c1"
        assert (ad.first_day, ad.last_day) == (date(2026, 9, 1), date(2026, 9, 3))
        assert session.scalars(select(AdAccount)).one().platform_account_id == "act_1"
    campaign_day = _days(session_factory, "campaign")[("c1", date(2026, 9, 2))]
    # ads a4..a7 belong to campaign c1
    assert campaign_day.spend == pytest.approx(sum(10 + k for k in range(4, 8)))
    assert campaign_day.impressions == sum(100 * (k + 1) for k in range(4, 8))
    assert campaign_day.is_complete is True


def test_meta_ads_manager_export_headers(engine, session_factory, tmp_path):
    header = ["Day", "Campaign name", "Campaign ID", "Ad set ID", "Ad ID", "Amount spent (BRL)",
              "Impressions", "Reach", "Link clicks", "Results"]
    rows = [["2026-10-01", "Black Friday", "111", "222", "333", "45.10", "2000", "1500", "40", ""]]
    path = write_csv(tmp_path / "export.csv", rows, header=header)
    import_insights_csv(path, engine=engine, account_name="Loja", now=NOW)

    with session_factory() as session:
        account = session.scalars(select(AdAccount)).one()
        assert (account.name, account.currency) == ("Loja", "BRL")
        assert session.scalars(select(Entity.name).where(Entity.level == "campaign")).one() == \
            "Black Friday"
    day = _days(session_factory, "ad")[("333", date(2026, 10, 1))]
    assert (day.spend, day.clicks, day.leads, day.reach) == (45.10, 40, 0, 1500)


@pytest.mark.parametrize(
    ("row", "line", "column", "message"),
    [
        (["2026-10-01", "act_1", "c", "s", "a", "ten", 10, 1, 0, 5], 2, "spend", "'ten' is not a number"),
        (["2026-10-01", "act_1", "c", "s", "a", "1", -10, 1, 0, 5], 2, "impressions", "is negative"),
        (["2026-10-01", "act_1", "c", "s", "a", "1", 10, 11, 0, 5], 2, "clicks",
         "clicks (11) exceed impressions (10)"),
        (["01/10/2026", "act_1", "c", "s", "a", "1", 10, 1, 0, 5], 2, "date",
         "could be dd/mm/yyyy or mm/dd/yyyy"),  # English headers: the order is not known
        (["2026.10.01", "act_1", "c", "s", "a", "1", 10, 1, 0, 5], 2, "date", "unknown date format"),
        (["2026-10-01", "act_1", "c", "s", "a", "1", 10.5, 1, 0, 5], 2, "impressions",
         "not a whole number"),
        (["2026-10-01", "act_1", "c", "s", "", "1", 10, 1, 0, 5], 2, "ad_id", "is empty"),
    ],
)
def test_bad_line_is_located_and_nothing_is_written(engine, session_factory, tmp_path, row, line,
                                                    column, message):
    good = ["2026-09-30", "act_1", "c", "s", "a", "1", 10, 1, 0, 5]
    path = write_csv(tmp_path / "bad.csv", [good, row])
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, now=NOW)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.column) == (str(path), line + 1, column)
    assert message in problem.message
    assert f"bad.csv:{line + 1} column {column!r}" in str(caught.value)
    assert _count(session_factory, DailyInsight) == 0
    assert _count(session_factory, AdAccount) == 0


def test_missing_column_names_the_column_and_accepted_headers(engine, tmp_path):
    header = ["date", "campaign_id", "adset_id", "ad_id", "spend", "impressions", "leads", "reach"]
    path = write_csv(tmp_path / "m.csv", [["2026-10-01", "c", "s", "a", 1, 10, 0, 5]], header)
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, account_name="x", now=NOW)
    assert caught.value.problems[0].column == "clicks"
    assert "'link clicks'" in caught.value.problems[0].message


def test_duplicate_with_different_values_names_both_lines(engine, session_factory, tmp_path):
    rows = [["2026-10-01", "act_1", "c", "s", "a", "1", 10, 1, 0, 5],
            ["2026-10-01", "act_1", "c", "s", "a", "1", 10, 1, 0, 5],  # identical: fine
            ["2026-10-01", "act_1", "c", "s", "a", "2", 10, 1, 0, 5]]
    path = write_csv(tmp_path / "dup.csv", rows)
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, now=NOW)
    problem = caught.value.problems[0]
    assert problem.line == 4 and "first on line 2" in problem.message
    assert _count(session_factory, DailyInsight) == 0


def test_a_failed_import_says_it_created_no_account(engine, session_factory, tmp_path, caplog):
    rows = [["2026-10-01", "act_9", "c", "s1", "a", "1", 10, 1, 0, 5],
            ["2026-10-02", "act_9", "c", "s2", "a", "1", 10, 1, 0, 5]]  # refused across lines
    caplog.set_level("INFO", logger="adsentinel")
    with pytest.raises(InputFileError):
        import_insights_csv(write_csv(tmp_path / "bad.csv", rows), engine=engine, now=NOW)
    assert "created account" not in caplog.text
    assert _count(session_factory, AdAccount) == 0
    good = write_csv(tmp_path / "good.csv", rows[:1])
    summary = import_insights_csv(good, engine=engine, now=NOW)
    assert summary.accounts_created == ["'act_9' (act_9)"]
    assert "created account 'act_9' (act_9)" in caplog.text


def test_ad_under_two_ad_sets_and_future_dates_are_refused(engine, tmp_path):
    rows = [["2026-10-01", "act_1", "c", "s1", "a", "1", 10, 1, 0, 5],
            ["2026-10-02", "act_1", "c", "s2", "a", "1", 10, 1, 0, 5],
            ["2026-12-01", "act_1", "c", "s1", "b", "1", 10, 1, 0, 5]]
    path = write_csv(tmp_path / "h.csv", rows)
    with pytest.raises(InputFileError) as caught:
        import_insights_csv(path, engine=engine, now=NOW)
    messages = [str(p) for p in caught.value.problems]
    assert any("appears under two ad sets" in m for m in messages)
    assert any("2026-12-01 is in the future" in m and ":4 column 'date'" in m for m in messages)


def test_skip_invalid_imports_the_rest_and_reports(engine, session_factory, tmp_path):
    rows = [["2026-10-01", "act_1", "c", "s", "a", "1", 10, 1, 0, 5],
            ["2026-10-02", "act_1", "c", "s", "a", "x", 10, 1, 0, 5],
            ["2026-10-03", "act_1", "c", "s", "a", "1", 10, 20, 0, 5]]
    path = write_csv(tmp_path / "skip.csv", rows)
    summary = import_insights_csv(path, engine=engine, skip_invalid=True, now=NOW)
    assert summary.rows_imported == 1 and summary.invalid_rows == 2
    assert [p.line for p in summary.problems] == [3, 4]
    assert set(_days(session_factory, "ad")) == {("a", date(2026, 10, 1))}


def test_reimport_restates_changed_days_only(engine, session_factory, tmp_path):
    first = insight_rows(days=2, ads=2)
    import_insights_csv(write_csv(tmp_path / "1.csv", first), engine=engine, now=NOW)
    before = _days(session_factory, "ad")

    revised = [list(r) for r in first]
    revised[0][5] = "99.00"  # a0 on day 1 revised by the platform
    later = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    summary = import_insights_csv(write_csv(tmp_path / "2.csv", revised), engine=engine, now=later)

    assert (summary.days_new, summary.days_restated, summary.days_unchanged) == (0, 1, 3)
    after = _days(session_factory, "ad")
    key = ("a0", date(2026, 9, 1))
    assert after[key].spend == 99.0 and after[key].updated_at > before[key].updated_at
    untouched = ("a1", date(2026, 9, 2))
    assert after[untouched].updated_at == before[untouched].updated_at
    campaign = _days(session_factory, "campaign")[("c0", date(2026, 9, 1))]
    assert campaign.spend == pytest.approx(99.0 + 11.0)
    assert _count(session_factory, DailyInsight) == 4 + 2 + 2  # ads + one adset + one campaign


def test_todays_rows_are_partial(engine, session_factory, tmp_path):
    rows = [["2026-11-24", "act_1", "c", "s", "a", "1", 10, 1, 0, 5],
            ["2026-11-25", "act_1", "c", "s", "a", "1", 10, 1, 0, 5]]
    import_insights_csv(write_csv(tmp_path / "t.csv", rows), engine=engine, now=NOW)
    days = _days(session_factory, "ad")
    assert days[("a", date(2026, 11, 24))].is_complete is True
    today = days[("a", date(2026, 11, 25))]
    assert today.is_complete is False and today.as_of is not None
    assert _days(session_factory, "campaign")[("c", date(2026, 11, 25))].is_complete is False


def test_file_without_account_needs_the_option(engine, tmp_path):
    header = ["date", "campaign_id", "adset_id", "ad_id", "spend", "impressions", "clicks",
              "leads", "reach"]
    path = write_csv(tmp_path / "n.csv", [["2026-10-01", "c", "s", "a", 1, 10, 1, 0, 5]], header)
    with pytest.raises(InputFileError, match="no account id"):
        import_insights_csv(path, engine=engine, now=NOW)


_PEAK_RSS_SCRIPT = """
import resource, sys
from datetime import datetime, timezone
from pathlib import Path
from adsentinel.config import load_settings
from adsentinel.db.engine import open_database
from adsentinel.ingest.csv_import import import_insights_csv
engine = open_database(load_settings(data_dir=Path(sys.argv[2])))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import_insights_csv(Path(sys.argv[1]), engine=engine, now=datetime(2026, 11, 25, tzinfo=timezone.utc))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.slow
def test_import_memory_does_not_grow_with_rows(tmp_path):
    """Streaming: importing 8x more rows costs (almost) no more memory."""
    import subprocess
    import sys

    growth_kib = []
    for n_days in (10, 80):
        path = write_csv(tmp_path / f"{n_days}.csv", insight_rows(days=n_days, ads=1000))
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT, str(path),
                              str(tmp_path / f"d{n_days}")],
                             check=True, capture_output=True, text=True)
        growth_kib.append(int(out.stdout.strip()))
    small, large = growth_kib
    assert large < small + 20 * 1024, growth_kib  # 70k more rows: < 20 MiB more peak memory
