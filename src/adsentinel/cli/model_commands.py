"""`adsentinel train`: fit the per-entity Isolation Forests of one or every active account."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.cli.app import gettext as _
from adsentinel.i18n import N_

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: the table's column of each level
_LEVEL_COLUMNS = {"campaign": N_("campaigns"), "adset": N_("adsets"), "ad": N_("ads")}


@app.command("train")
def train_command(
    account: Annotated[str | None, typer.Option(
        "--account", help="Account name, platform id or numeric id; default: every active account.",
    )] = None,
) -> None:
    """Train one Isolation Forest per campaign, ad set and ad with enough complete days.

    Models go to the model store (ADSENTINEL_MODELS_STORAGE_PATH); entities with fewer than
    ADSENTINEL_ISOLATION_FOREST_MIN_SAMPLES days are skipped and keep statistical detection.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from adsentinel.accounts.service import select_accounts
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.model_store.store import ENTITY_TYPES, ModelStore
    from adsentinel.training.service import train_account_models

    settings = get_settings()
    session_factory = make_session_factory(open_database(settings))
    accounts = select_accounts(session_factory=session_factory, wanted=account)
    store = ModelStore.from_settings(settings)
    table = Table(title=_("training"), caption=_("trained / skipped / failed"))
    table.add_column(_("account"))
    for level in ENTITY_TYPES:
        table.add_column(_(_LEVEL_COLUMNS.get(level, level)), justify="right")
    table.add_column(_("seconds"), justify="right")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        for ref in accounts:
            account_id, name = ref.id, ref.name
            task = progress.add_task(_("training %(account)s", account=name), total=None)
            result = train_account_models(
                session_factory=session_factory, settings=settings, account_id=account_id,
                store=store,
                progress=partial(_show_progress, progress, task),
            )
            progress.remove_task(task)
            table.add_row(
                name,
                *(f"{result[level]['trained']:,} / {result[level]['skipped']:,} / "
                  f"{result[level]['failed']:,}" for level in ENTITY_TYPES),
                f"{result['training_duration_seconds']:.1f}",
            )
    console.print(table)
    console.print(_("models in %(location)s", location=store.location), style="dim")


def _show_progress(progress: Progress, task: TaskID, done: int, total: int) -> None:
    progress.update(task, completed=done, total=total)
