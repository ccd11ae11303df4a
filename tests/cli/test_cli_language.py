"""The CLI speaks the language of ADSENTINEL_LOCALE, else LANG: summaries, tables and errors in
Brazilian Portuguese with Brazilian numbers and dates, English by default."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from adsentinel.cli import app
from adsentinel.cli.app import console
from factories import CANONICAL_HEADER, write_csv

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(console, "width", 220)
    return tmp_path / "data"


def insights(tmp_path, days=12, first=date(2026, 11, 1)):
    rows = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for k in range(2):
            rows.append([day.isoformat(), "act_7", "c0", "s0", f"a{k}", "1234.50", 100000, 1500,
                         12, 80000])
    return write_csv(tmp_path / "in.csv", rows, CANONICAL_HEADER)


def test_the_import_summary_in_portuguese(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    result = runner.invoke(app, ["import", str(insights(tmp_path)), "--account", "Loja"])
    assert result.exit_code == 0, result.output
    assert "linhas importadas" in result.output and "rows imported" not in result.output
    assert "01/11/2026 .. 12/11/2026" in result.output
    assert "novas campanhas / conjuntos de anúncios / anúncios" in result.output


def test_adsentinel_locale_wins_over_lang_and_english_is_the_default(data_dir, tmp_path,
                                                                     monkeypatch):
    csv_file = insights(tmp_path, days=1200, first=date(2020, 1, 1))  # 2,400 rows
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    monkeypatch.setenv("ADSENTINEL_LOCALE", "en")
    english = runner.invoke(app, ["import", str(csv_file), "--account", "Loja"])
    assert english.exit_code == 0, english.output
    assert "rows imported" in english.output and "2,400" in english.output
    monkeypatch.setenv("ADSENTINEL_LOCALE", "pt_BR")
    portuguese = runner.invoke(app, ["import", str(csv_file), "--account", "Loja"])
    assert "linhas lidas" in portuguese.output and "2.400" in portuguese.output


def test_alert_commands_and_their_errors_in_portuguese(data_dir, tmp_path, monkeypatch):
    runner.invoke(app, ["import", str(insights(tmp_path)), "--account", "Loja"])
    monkeypatch.setenv("ADSENTINEL_LOCALE", "pt-BR")
    listed = runner.invoke(app, ["alerts", "channel", "list"])
    assert "nenhum canal de alerta; adicione um com `adsentinel alerts channel add`" \
        in listed.output
    floor = runner.invoke(app, ["alerts", "min-spend", "--account", "Loja", "1564.97"])
    assert "Loja: alertas só a partir de um valor usado diário de 1.564,97 USD" in floor.output
    day = runner.invoke(app, ["calendar", "add", "--account", "Loja", "2026-11-27",
                              "--label", "Black Friday"])
    assert "27/11/2026 está no calendário (holiday: Black Friday)" in day.output
    bad = runner.invoke(app, ["calendar", "add", "--account", "Loja", "27/11/2026"])
    assert bad.exit_code == 2  # a bad value is a usage error
    assert "DAY deve ser uma data AAAA-MM-DD, recebido '27/11/2026'" in bad.output


def test_a_missing_file_is_told_in_portuguese_through_the_entry_point(tmp_path, monkeypatch,
                                                                      capsys):
    from adsentinel.cli.app import run

    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    code = run(["import", str(tmp_path / "nada.csv")])
    err = capsys.readouterr().err
    assert code == 66
    assert f"erro: {tmp_path / 'nada.csv'}: arquivo não encontrado" in " ".join(err.split())
    assert "dica: confira o caminho" in err


def test_status_in_portuguese(data_dir, tmp_path, monkeypatch):
    runner.invoke(app, ["import", str(insights(tmp_path)), "--account", "Loja"])
    monkeypatch.setenv("ADSENTINEL_LOCALE", "pt_BR")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    for word in ("status do adsentinel", "último dia", "precisa de atenção", "nunca"):
        assert word in result.output
    # the table speaks Portuguese; what needs attention comes from the status service (English)
    assert "last day" not in result.output and "needs attention" not in result.output


def test_generate_and_warehouse_refusals_in_portuguese(tmp_path, monkeypatch, capsys):
    from adsentinel.cli.app import run

    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    assert run(["generate", "--out", str(tmp_path / "g"), "--world", "mars"]) != 0
    assert "--world deve ser um de lab, field, recebido 'mars'" in capsys.readouterr().err
    assert run(["import", str(insights(tmp_path)), "--from-sql", "sqlite://"]) != 0
    assert "informe um ARQUIVO ou --from-sql URL, não os dois" in capsys.readouterr().err


def _help(args, tmp_path, **language):
    """``adsentinel ARGS`` through the real console entry point, with the modules it imported
    (Python's ``-X importtime`` report)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("ADSENTINEL_") and k not in ("LANG", "LC_ALL",
                                                                   "LC_MESSAGES")}
    environment.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), COLUMNS="200",
                       PYTHONPROFILEIMPORTTIME="1", **language)
    result = subprocess.run([str(Path(sys.executable).with_name("adsentinel")), *args],
                            capture_output=True, text=True, env=environment, cwd=tmp_path,
                            timeout=60)
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:")}
    return result, modules


@pytest.mark.parametrize("language", [{"ADSENTINEL_LOCALE": "pt_BR"}, {"LANG": "pt_BR.UTF-8"}])
def test_help_in_portuguese_through_the_console_entry_point(tmp_path, language):
    result, modules = _help(["--help"], tmp_path, **language)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Acompanhe o desempenho dos anúncios na Meta" in out
    assert "Opções" in out and "Comandos" in out and "Mostra esta mensagem e sai." in out
    assert "Detecta anomalias, grava-as" in out  # a command's docstring, in the list
    assert "Watch Meta Ads performance" not in out and "Show this message" not in out
    heavy = sorted(m for m in modules
                   if m.split(".")[0] in ("pandas", "numpy", "sklearn", "scipy", "sqlalchemy",
                                          "plotly", "celery", "fastapi"))
    assert heavy == []

    detect, _ = _help(["detect", "--help"], tmp_path, **language)
    assert detect.returncode == 0, detect.stderr[-2000:]
    assert "Nome da conta, id na plataforma ou id numérico" in detect.stdout
    assert "[padrão: table]" in detect.stdout and "default: every" not in detect.stdout
    nested, _ = _help(["alerts", "channel", "add", "--help"], tmp_path, **language)
    assert "Adiciona um canal de alerta a uma conta." in nested.stdout


def test_help_stays_english_by_default_and_reads_no_catalog(tmp_path):
    result, modules = _help(["--help"], tmp_path, LANG="C.UTF-8")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Watch Meta Ads performance and report" in result.stdout
    assert "Options" in result.stdout and "Show this message and exit." in result.stdout
    assert not any(m.split(".")[0] == "babel" for m in modules)
