"""Login timing: an unknown username must cost what a wrong password costs.

Runs a real server (SQLite in a temporary directory, the production Argon2id
parameters) on loopback and times logins over HTTP. The baseline is the wrong-password
path in the same run; the ratio is what matters, not the milliseconds. If the unknown-user
path skipped the decoy hash it would answer in a fraction of the time and the ratio
would fall far below 1.

    .venv/bin/python bench/login_timing.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from guruconnect.server import admin
from guruconnect.server.background import BackgroundServer
from guruconnect.server.config import Settings
from guruconnect.server.log_setup import configure

PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway bench user


def _one(client: httpx.Client, username: str, password: str) -> float:
    started = time.perf_counter()
    client.post("/api/auth/login", json={"username": username, "password": password})
    return (time.perf_counter() - started) * 1000


def _interleaved(
    client: httpx.Client, cases: dict[str, tuple[str, str]], rounds: int
) -> dict[str, list[float]]:
    """Alternate the cases request by request, so drift in machine load hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (username, password) in cases.items():
            samples[name].append(_one(client, username, password))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    configure("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            jwt_secret=secrets.token_urlsafe(48),
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            login_rate_limit="100000/minute",
            log_level="WARNING",
        )
        asyncio.run(admin.create_user(settings, "bench", PASSWORD))
        server = BackgroundServer(settings)
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                _one(client, "bench", "warm-up")
                rows = _interleaved(
                    client,
                    {
                        "wrong password (baseline)": ("bench", "nope"),
                        "unknown user": ("nobody", "nope"),
                        "correct password": ("bench", PASSWORD),
                    },
                    args.rounds,
                )
                health = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    client.get("/health")
                    health.append((time.perf_counter() - started) * 1000)
                rows["GET /health (no hashing)"] = health
        finally:
            server.stop()
    base = statistics.median(rows["wrong password (baseline)"])
    print(f"login timing, {args.rounds} rounds each, Argon2id t=3 m=64MiB p=4, loopback HTTP")
    print(f"{'path':<28} {'p50 ms':>8} {'mean ms':>8} {'p90 ms':>8} {'ratio':>7}")
    for name, samples in rows.items():
        p50 = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(
            f"{name:<28} {p50:8.1f} {statistics.fmean(samples):8.1f} {p90:8.1f} {p50 / base:7.2f}"
        )


if __name__ == "__main__":
    main()
