"""`adsentinel train`: fit the per-entity Isolation Forests of one or every active account."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import or_, select

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import AdAccount
from adsentinel.errors import NotFoundError
from adsentinel.models.store import ENTITY_TYPES, ModelStore
from adsentinel.service.training import train_account_models


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
    settings = get_settings()
    session_factory = make_session_factory(open_database(settings))
    accounts = _accounts(session_factory, account)
    store = ModelStore.from_settings(settings)
    table = Table(title="training", caption="trained / skipped / failed")
    table.add_column("account")
    for level in ENTITY_TYPES:
        table.add_column(f"{level}s", justify="right")
    table.add_column("seconds", justify="right")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        for account_id, name in accounts:
            task = progress.add_task(f"training {name}", total=None)
            result = train_account_models(
                session_factory=session_factory, settings=settings, account_id=account_id,
                store=store,
                progress=lambda done, total, task=task: progress.update(task, completed=done,
                                                                         total=total),
            )
            progress.remove_task(task)
            table.add_row(
                name,
                *(f"{result[level]['trained']:,} / {result[level]['skipped']:,} / "
                  f"{result[level]['failed']:,}" for level in ENTITY_TYPES),
                f"{result['training_duration_seconds']:.1f}",
            )
    console.print(table)
    console.print(f"models in {store.root}", style="dim")


def _accounts(session_factory, wanted: str | None) -> list[tuple[int, str]]:
    with session_factory() as session:
        query = select(AdAccount.id, AdAccount.name).order_by(AdAccount.id)
        if wanted is None:
            rows = session.execute(query.where(AdAccount.is_active.is_(True))).all()
            if not rows:
                raise NotFoundError("there is no active ad account to train",
                                    hint="import insights first with `adsentinel import`")
            return [(r.id, r.name) for r in rows]
        match = [AdAccount.name == wanted, AdAccount.platform_account_id == wanted]
        if wanted.isdigit():
            match.append(AdAccount.id == int(wanted))
        rows = session.execute(query.where(or_(*match))).all()
    if not rows:
        raise NotFoundError(f"no ad account named or numbered {wanted!r}",
                            hint="pass an account's name, platform id or numeric id")
    exact = [r for r in rows if r.name == wanted]
    chosen = exact[0] if exact else rows[0]
    return [(chosen.id, chosen.name)]
