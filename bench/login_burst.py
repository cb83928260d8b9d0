"""Login burst: N logins with a wrong password for one username, from one address, all at
once, against a real server process with the production Argon2id parameters (64 MiB).

Prints how many reached the password check (401s: each was verified), how many were
refused by the limit (429) or for want of a free password-check slot (503), and the
server's resident memory before and at its peak (``VmRSS`` / ``VmHWM`` from /proc), with
the load average beside them.

    .venv/bin/python bench/login_burst.py [--concurrency 30]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from guruconnect.server import admin
from guruconnect.server.background import free_port
from guruconnect.server.config import load_database_settings

PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway bench user


def _memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


async def _burst(url: str, concurrency: int) -> list[int]:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=300) as client:
        body = {"username": "alice", "password": "wrong password!"}
        responses = await asyncio.gather(
            *(client.post("/api/auth/login", json=body) for _ in range(concurrency))
        )
    return [r.status_code for r in responses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        database_url = f"sqlite+aiosqlite:///{tmp}/guruconnect.db"
        env = {
            **os.environ,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATABASE_URL": database_url,
            "GURUCONNECT_PORT": str(port),
            "GURUCONNECT_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-c", "from guruconnect.cli import main; main()", "server"]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            settings = load_database_settings(database_url=database_url)
            asyncio.run(admin.create_user(settings, "alice", PASSWORD, admin=False))
            # One login first, so that the baseline includes a warm server.
            httpx.post(f"{url}/api/auth/login", json={"username": "alice", "password": PASSWORD})
            before = _memory_kib(server.pid)
            load_before = os.getloadavg()
            codes = asyncio.run(_burst(url, args.concurrency))
            after = _memory_kib(server.pid)
            load_after = os.getloadavg()
        finally:
            server.terminate()
            server.wait(30)
    counted = dict(sorted(collections.Counter(codes).items()))
    print(f"{args.concurrency} concurrent wrong-password logins, one username, one address")
    print(f"  answers: {counted} (each 401 went through Argon2)")
    print(f"  server RSS before: {before['VmRSS'] / 1024:.0f} MiB")
    print(f"  server peak RSS:   {after['VmHWM'] / 1024:.0f} MiB")
    print(
        "  load average before / after: "
        f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
