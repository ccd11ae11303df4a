"""`adsentinel accounts ...` and `adsentinel sync` as a user runs them (in process, CliRunner)."""

from __future__ import annotations

import pytest
from graph_api import ACCOUNT, TOKEN, payload, serve_insights, serve_structure
from typer.testing import CliRunner

from adsentinel.cli import app
from adsentinel.errors import ConfigError


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    """Tables on one line each: a wide terminal, whatever width the shared consoles were
    created with by earlier tests of the same process."""
    from adsentinel.cli.app import console, err_console

    monkeypatch.setenv("COLUMNS", "200")
    for shared in (console, err_console):
        monkeypatch.setattr(shared, "width", 200)
    return CliRunner()


def test_add_list_disable_enable(runner, monkeypatch):
    monkeypatch.delenv("META_TOKEN", raising=False)
    refused = runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env",
                                  "META_TOKEN", "--name", "Sorriso"])
    assert "META_TOKEN is not set in this shell" in str(refused.exception)
    assert "export META_TOKEN='EAA...'" in refused.exception.hint
    assert "(CSV only)" not in runner.invoke(app, ["accounts", "list"]).stdout
    assert "act_1234567890" not in runner.invoke(app, ["accounts", "list"]).stdout
    added = runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env",
                                "META_TOKEN", "--name", "Sorriso", "--no-check"])
    assert added.exit_code == 0, added.output
    assert "syncs with the token in $META_TOKEN" in added.stdout
    assert "META_TOKEN is not set in this shell" in added.stderr

    monkeypatch.setenv("META_TOKEN", TOKEN)
    listed = runner.invoke(app, ["accounts", "list"])
    assert listed.exit_code == 0 and "$META_TOKEN" in listed.stdout
    assert "act_1234567890" in listed.stdout and TOKEN not in listed.output

    assert runner.invoke(app, ["accounts", "disable", "Sorriso"]).exit_code == 0
    synced = runner.invoke(app, ["sync"])
    assert synced.exit_code == 0 and "no account syncs from Meta yet" in synced.stderr
    assert runner.invoke(app, ["accounts", "enable", "act_1234567890"]).exit_code == 0


def test_a_token_passed_as_the_variable_name_is_refused(runner):
    result = runner.invoke(app, ["accounts", "add", "--account-id", "1234567890",
                                 "--token-env", TOKEN])
    assert isinstance(result.exception, ConfigError)
    assert "looks like an access token itself" in str(result.exception)
    assert TOKEN not in str(result.exception)


def test_sync_prints_a_summary_per_account(runner, graph, monkeypatch):
    monkeypatch.setenv("META_TOKEN", TOKEN)
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env", "META_TOKEN",
                        "--name", "Sorriso"])
    result = runner.invoke(app, ["sync", "--since", "2026-11-24"])
    assert result.exit_code == 0, result.output
    assert "Sorriso" in result.stdout and "succeeded" in result.stdout
    assert "2/3/4" in result.stdout  # campaigns / ad sets / ads
    assert TOKEN not in result.output


def test_sync_of_an_expired_token_exits_non_zero_and_says_what_to_do(runner, graph, monkeypatch):
    monkeypatch.setenv("META_TOKEN", TOKEN)
    graph.on("GET", ACCOUNT, (400, payload("error_token_expired"), {}))
    runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env", "META_TOKEN",
                        "--no-check"])
    result = runner.invoke(app, ["sync", "--account", ACCOUNT])
    assert result.exit_code == 77
    assert "needs_attention" in result.stdout and "Session has expired" in result.stderr
    listed = runner.invoke(app, ["accounts", "list"])
    assert "code 190" in listed.stdout and TOKEN not in listed.output


def test_add_reads_the_account_once_to_prove_the_token(runner, graph, monkeypatch):
    monkeypatch.setenv("META_TOKEN", TOKEN)
    graph.ok("GET", ACCOUNT, "account")
    result = runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env",
                                 "META_TOKEN"])
    assert result.exit_code == 0, result.output
    assert "Meta reads it: Clinica Sorriso - BR, BRL, America/Sao_Paulo" in result.stdout


def test_add_with_a_refused_token_says_so(runner, graph, monkeypatch):
    from adsentinel.sync.errors import MetaAuthError

    monkeypatch.setenv("META_TOKEN", TOKEN)
    graph.on("GET", ACCOUNT, (400, payload("error_token_expired"), {}))
    result = runner.invoke(app, ["accounts", "add", "--account-id", ACCOUNT, "--token-env",
                                 "META_TOKEN"])
    assert isinstance(result.exception, MetaAuthError) and result.exception.exit_code == 77
    assert "Session has expired" in result.exception.message
    assert "act_1234567890" not in runner.invoke(app, ["accounts", "list"]).stdout  # not stored
