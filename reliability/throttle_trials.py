"""The server's throttles against a real ``adsentinel serve`` on loopback (issue 17, item 7).

1. **Chart burst**: N chart requests at once (90-day entity metrics, distinct entities) while
   ``/api/v1/health`` is probed every 50 ms, ``--rounds`` times with the chart queue unbounded (the old
   behaviour: every request waits its turn, holding a server thread) and once with the default
   ``ADSENTINEL_CHART_QUEUE_LIMIT``. Reports charts answered 200 and 429, the slowest chart, and
   ``/health`` p50/p99/max during the burst.
2. **Bad tokens**: one client sends bad tokens, then a good one; reports the status codes and the
   Retry-After of the first refusal.

Uses ``benchmarks/bench_api.py``'s PostgreSQL world and server helpers.

    python reliability/throttle_trials.py [--entities 2000] [--days 120] [--burst 45]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_api import _free_port, create_token, populate, start_server, stop_server  # noqa: E402
from scratch_postgres import scratch_database  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def chart_burst(base: str, token: str, entity_ids: list[int]) -> dict:
    """Every chart request at once, /health probed meanwhile."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=len(entity_ids) + 4)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        done = asyncio.Event()
        health: list[float] = []

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/api/v1/health")
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)

        async def chart(entity_id: int) -> tuple[int, float]:
            started = time.perf_counter()
            answer = await client.get(f"/api/v1/entities/{entity_id}/metrics", headers=headers)
            return answer.status_code, time.perf_counter() - started

        prober = asyncio.create_task(probe())
        started = time.perf_counter()
        results = await asyncio.gather(*(chart(e) for e in entity_ids))
        elapsed = time.perf_counter() - started
        done.set()
        await prober
    codes = [code for code, _ in results]
    return {"ok": codes.count(200), "refused": codes.count(429),
            "other": len(codes) - codes.count(200) - codes.count(429),
            "slowest_chart_s": max(t for _, t in results), "burst_s": elapsed,
            "health_p50_ms": 1000 * percentile(health, 0.5),
            "health_p99_ms": 1000 * percentile(health, 0.99),
            "health_max_ms": 1000 * max(health), "health_probes": len(health)}


def bad_tokens(base: str, token: str, attempts: int) -> tuple[list[int], str | None]:
    import httpx

    codes, retry_after = [], None
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(attempts):
            answer = client.get("/api/v1/accounts", headers={"Authorization": "Bearer ads_wrong"})
            codes.append(answer.status_code)
            retry_after = retry_after or answer.headers.get("Retry-After")
        codes.append(client.get("/api/v1/accounts",
                                headers={"Authorization": f"Bearer {token}"}).status_code)
    return codes, retry_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--burst", type=int, default=45)
    parser.add_argument("--bad-tokens", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per configuration")
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="throttle-") as folder:
        print(f"populating {args.entities} entities x {args.days} days", flush=True)
        populate(url, folder, n_entities=args.entities, days=args.days, accounts=1, seed=0)
        from sqlalchemy import create_engine, text

        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            entity_ids = list(conn.execute(text(
                "SELECT id FROM entities WHERE level = 'ad' ORDER BY id LIMIT :n"),
                {"n": args.burst}).scalars())
        engine.dispose()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")},
               "ADSENTINEL_DATABASE_URL": url, "ADSENTINEL_DATA_DIR": folder,
               "ADSENTINEL_LOG_LEVEL": "WARNING"}
        token = create_token(env)
        for label, limit in (("unbounded (old)", "10000"), ("default limit", None)):
            run_env = dict(env) if limit is None else {**env,
                                                       "ADSENTINEL_CHART_QUEUE_LIMIT": limit}
            port = _free_port()
            server = start_server(run_env, port)
            try:
                for round_ in range(1, args.rounds + 1):
                    found = asyncio.run(chart_burst(f"http://127.0.0.1:{port}", token,
                                                    entity_ids))
                    print(f"{len(entity_ids)} charts at once, {label}, round {round_}: "
                          + ", ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in found.items())
                          + f" (load average {os.getloadavg()[0]:.1f})", flush=True)
                if limit is None:
                    codes, retry_after = bad_tokens(f"http://127.0.0.1:{port}", token,
                                                    args.bad_tokens)
            finally:
                stop_server(server)
        print(f"{args.bad_tokens} bad tokens then a good one from one client: {codes}, "
              f"Retry-After {retry_after} s")


if __name__ == "__main__":
    main()
