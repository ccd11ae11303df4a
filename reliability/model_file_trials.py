"""Fault trials: model files truncated, bit-flipped, or replaced by a pickle that would run code.

On the embedded SQLite default in a temporary folder: one synthetic account (the ``demo`` preset,
20 ads x 90 days, fixed seed) imported with ``import_insights_csv``, its models trained with
``training.service.train_account_models``, and a reference detection with every model
(``detection.account.detect_account`` with ``detection.service.model_loader_or_none``).

Each trial takes the model pack (one signed file per campaign) holding an entity that has
statistical anomalies in the reference (chosen at random, ``--seed``), damages it in place, and
checks:

* refused: ``ModelStore.load_models`` (no cache) returns its campaign among
  ``refused_campaigns`` and the production loader (process-wide cache, as the workers use it)
  returns no model for the entity, with a "model refused" log line naming the pack;
* no code ran: the marker file that the malicious pickle's ``__reduce__`` would create (through
  ``os.system``) does not exist;
* detection continues: ``detect_account`` completes, the entity is judged, it gets no
  multivariate (Isolation Forest) row, and its statistical rows equal the reference's;
* retrain queued: ``detection.service.campaigns_to_retrain`` of the loaded ``ModelSet`` names the
  entity's campaign (what the detection task hands to a training task).

Damages: ``truncate`` (random length, 0 .. size-1), ``bitflip`` (one bit at a random offset),
``pickle`` (the file replaced by ``pickle.dumps`` of an object whose ``__reduce__`` calls
``os.system("touch <marker>")``; once at the start a separate Python process un-pickles the same
payload to prove it does create the marker).

    .venv/bin/python reliability/model_file_trials.py [--trials 20] [--seed 1]

The temporary folder is removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

SIGNING_KEY = "reliability-signing-key-0123"


class Evil:
    """Un-pickling this runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> None:  # noqa: C901, PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per damage (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the files and offsets")
    parser.add_argument("--data-seed", type=int, default=3)
    args = parser.parse_args()

    from sqlalchemy import select, text

    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.db.models import AdAccount
    from adsentinel.detect.anomaly_detector import MULTIVARIATE
    from adsentinel.detection.account import detect_account
    from adsentinel.detection.service import campaigns_to_retrain, load_detection_models, model_loader_or_none
    from adsentinel.evaluation.dataset_files import write_dataset
    from adsentinel.evaluation.lab_world import generate_dataset, preset_config
    from adsentinel.ingest.csv_import import import_insights_csv
    from adsentinel.model_store.store import PACK_SUFFIX, ModelStore
    from adsentinel.scope import campaign_of
    from adsentinel.training.service import train_account_models

    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="adsentinel-model-trials-"))
    marker = folder / "PWNED-marker"
    results: dict[str, Counter] = {}
    bugs: list[str] = []
    captured = Captured()
    logging.getLogger("adsentinel").addHandler(captured)
    try:
        settings = load_settings(data_dir=str(folder / "data"), model_signing_key=SIGNING_KEY,
                                 log_level="WARNING")
        engine = open_database(settings)
        dataset = generate_dataset(preset_config("demo", seed=args.data_seed, accounts=1,
                                                 ads_per_account=20, days=90,
                                                 end_date=date(2026, 11, 20)))
        files = write_dataset(dataset, folder / "generated")
        import_insights_csv(files.insights, engine=engine)
        factory = make_session_factory(engine)
        with factory() as session:
            account_id = session.scalars(select(AdAccount.id)).one()
        trained = train_account_models(session_factory=factory, settings=settings,
                                       account_id=account_id)
        store = ModelStore.from_settings(settings, cache=None)
        paths = sorted(store.account_dir(account_id).glob("*" + PACK_SUFFIX))
        with factory() as session:
            parents = dict(session.execute(text(
                "SELECT id, parent_id FROM entities WHERE account_id = :a"),
                {"a": account_id}).all())
            levels = dict(session.execute(text(
                "SELECT id, level FROM entities WHERE account_id = :a"), {"a": account_id}).all())
        by_entity = {e: store.pack_path(account_id, campaign_of(e, parents))
                     for e in store.load_models(account_id).models}

        def detect() -> dict[int, set[tuple]]:
            with factory.begin() as session:
                session.execute(text("DELETE FROM anomalies"))
                session.execute(text("UPDATE entities SET judged_at = NULL"))
            detect_account(session_factory=factory, settings=settings, account_id=account_id,
                           model_loader=model_loader_or_none(settings, account_id))
            rows: dict[int, set[tuple]] = {}
            with factory() as session:
                for r in session.execute(text(
                        "SELECT entity_id, day, metric, severity, round(score, 2), status "
                        "FROM anomalies")):
                    rows.setdefault(r[0], set()).add(tuple(r[1:]))
            return rows

        def judged(entity_id: int) -> bool:
            with factory() as session:
                return session.scalar(text("SELECT judged_at IS NOT NULL FROM entities "
                                           "WHERE id = :i"), {"i": entity_id})

        reference = detect()
        statistical = {e: {r for r in rows if r[1] != MULTIVARIATE}
                       for e, rows in reference.items()}
        candidates = sorted(e for e, rows in statistical.items() if rows and e in by_entity)
        forest_rows = sum(1 for rows in reference.values() for r in rows if r[1] == MULTIVARIATE)
        print(f"{len(by_entity)} models trained in {len(paths)} packs ({trained.get('status', 'done')}); reference "
              f"detection: {sum(map(len, reference.values()))} rows ({forest_rows} multivariate); "
              f"{len(candidates)} entities with a model and statistical anomalies", flush=True)
        if not candidates:
            raise RuntimeError("no entity with a model and statistical anomalies to damage")

        payload = pickle.dumps(Evil(f"touch {marker}"))
        control = folder / "control.pkl"
        control.write_bytes(payload)
        subprocess.run([sys.executable, "-c", "import pickle,sys; "
                        "pickle.loads(open(sys.argv[1], 'rb').read())", str(control)],
                       check=False, capture_output=True)
        payload_live = marker.exists()
        marker.unlink(missing_ok=True)
        control.unlink()
        print(f"control: un-pickling the payload in another process creates the marker: "
              f"{payload_live}", flush=True)

        for damage in ("truncate", "bitflip", "pickle"):
            counts = results.setdefault(damage, Counter())
            for trial in range(1, args.trials + 1):
                entity_id = rng.choice(candidates)
                path = by_entity[entity_id]
                original = path.read_bytes()
                if damage == "truncate":
                    length = rng.randrange(0, len(original))
                    with open(path, "r+b") as handle:
                        handle.truncate(length)
                    what = f"truncated to {length}/{len(original)} bytes"
                elif damage == "bitflip":
                    offset, bit = rng.randrange(len(original)), rng.randrange(8)
                    with open(path, "r+b") as handle:
                        handle.seek(offset)
                        handle.write(bytes([original[offset] ^ (1 << bit)]))
                    what = f"bit {bit} of byte {offset}/{len(original)} flipped"
                else:
                    with open(path, "wb") as handle:
                        handle.write(payload)
                    what = f"replaced by a {len(payload)}-byte code-running pickle"
                time.sleep(0.002)
                captured.messages.clear()
                problems = []
                reason = ""
                campaign = campaign_of(entity_id, parents)
                if campaign not in store.load_models(account_id).refused_campaigns:
                    problems.append("ModelStore.load_models accepted it")
                reason = next((m.split(": ", 2)[-1] for m in captured.messages
                               if "model refused" in m), "")
                production = load_detection_models(settings=settings, account_id=account_id)
                if production.loader()(levels[entity_id], str(entity_id)) is not None:
                    problems.append("the production loader returned a model")
                retrain = campaigns_to_retrain(session_factory=factory, models=production,
                                               account_id=account_id)
                if campaign_of(entity_id, parents) in retrain:
                    counts["retrain queued"] += 1
                else:
                    problems.append("no retrain asked for its campaign")
                logged = any("model refused" in m and path.name in m for m in captured.messages)
                try:
                    rows = detect()
                except Exception as exc:  # noqa: BLE001 - detection stopping is a failure
                    rows = None
                    problems.append(f"detection raised {type(exc).__name__}: {exc}")
                if rows is not None:
                    mine = rows.get(entity_id, set())
                    if not judged(entity_id):
                        problems.append("entity not judged")
                    counts["forest row gone"] += any(r[1] == MULTIVARIATE
                                                     for r in reference.get(entity_id, ()))
                    if any(r[1] == MULTIVARIATE for r in mine):
                        problems.append("a multivariate row from the damaged model")
                    if {r for r in mine if r[1] != MULTIVARIATE} != statistical[entity_id]:
                        problems.append("statistical rows differ from the reference")
                    counts["statistical rows kept"] += bool(mine) and \
                        {r for r in mine if r[1] != MULTIVARIATE} == statistical[entity_id]
                if marker.exists():
                    problems.append("CODE RAN: marker file created")
                    counts["code ran"] += 1
                    marker.unlink()
                counts["trials"] += 1
                counts["refused"] += not any("accepted" in p or "returned a model" in p
                                             for p in problems)
                counts["logged"] += logged
                counts["ok"] += not problems
                if not logged:
                    problems.append("no 'model refused' log line naming the file")
                # restore the good file (new inode, as a retraining would write it)
                temp = path.with_name(f".{path.name}.restore.tmp")
                temp.write_bytes(original)
                os.replace(temp, path)
                verdict = "refused" if not problems else "; ".join(problems)
                print(f"{damage:8} trial {trial:2}/{args.trials}: entity {entity_id} {what} -> "
                      f"{verdict}" + (f" ({reason})" if reason else ""), flush=True)
                if problems:
                    bugs.append(f"{damage} trial {trial}, entity {entity_id}, {what}: "
                                + "; ".join(problems))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
    finally:
        logging.getLogger("adsentinel").removeHandler(captured)
        shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| damaged model file | trials | refused | accepted | code ran | refusal logged | "
          "detection continued, statistical rows = reference | the model's own forest row, "
          "now absent | retrain of its campaign queued |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for damage, c in results.items():
        print(f"| {damage} | {c['trials']} | {c['refused']} | {c['trials'] - c['refused']} | "
              f"{c['code ran']} | {c['logged']} | {c['statistical rows kept']} | "
              f"{c['forest row gone']} | {c['retrain queued']} |")
    for bug in bugs:
        print("PROBLEM", bug)
    summary = " ".join(f"{d}_trials={c['trials']} {d}_refused={c['refused']} {d}_ok={c['ok']}"
                       for d, c in results.items())
    print(f"RELIABILITY model_file_trials seed={args.seed} {summary}")


if __name__ == "__main__":
    main()
