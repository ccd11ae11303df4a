"""Property-based: whatever the file holds, the import either succeeds or raises a located
InputFileError, and a failed import writes nothing."""

from __future__ import annotations

import string
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import DailyInsight
from adsentinel.errors import InputFileError
from adsentinel.ingest.csv_import import import_insights_csv

HEADER = "date,account_id,campaign_id,adset_id,ad_id,spend,impressions,clicks,leads,reach"
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)

cell = st.one_of(
    st.sampled_from(["", "0", "1", "10", "-1", "1.5", "1e3", "nan", "inf", "abc", "2026-10-01",
                     "2026-02-30", "10/01/2026", " 7 ", "act_1", "c1", "s1", "a1", "\"q\"", "x" * 70]),
    st.integers(min_value=-5, max_value=10**6).map(str),
    st.text(alphabet=string.printable + "çãé\x00", max_size=8),
)
line = st.lists(cell, min_size=0, max_size=12).map(lambda cells: ",".join(cells))
good_line = st.tuples(
    st.sampled_from(["2026-10-01", "2026-10-02"]), st.sampled_from(["c1", "c2"]),
    st.sampled_from(["s1", "s2"]), st.sampled_from(["a1", "a2", "a3"]),
    st.integers(0, 100), st.integers(0, 1000),
).map(lambda t: f"{t[0]},act_1,{t[1]},{t[2]},{t[3]},{t[4]}.5,{t[5]},{t[5] // 10},{t[5] // 50},"
                f"{t[5] // 2}")


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(line, good_line), min_size=1, max_size=8),
       raw_tail=st.binary(max_size=6))
def test_any_file_imports_cleanly_or_not_at_all(tmp_path_factory, lines, raw_tail):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "in.csv"
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode("utf-8") + raw_tail)
    engine = open_database(load_settings(data_dir=folder / "data"))
    factory = make_session_factory(engine)
    try:
        import_insights_csv(path, engine=engine, now=NOW)
    except InputFileError as error:
        assert error.problems and all(p.file == str(path) for p in error.problems)
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(DailyInsight)) == 0
    finally:
        engine.dispose()
