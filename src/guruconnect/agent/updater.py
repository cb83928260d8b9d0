"""Self-update: carries out what :mod:`guruconnect.releases.decision` decides.

Steps, each refusing with a reason the relay audits (``agent.update_refused``):
verify the offer's signature, expiry, platform and version (no rollback); download the
file *beside* the running one (fsync); check size and SHA-256; run ``NEW --version`` and
expect the signed version; keep the running file as ``<file>.previous`` (a hard link);
rename the new one over it (atomic on one filesystem); exec it (same PID).

The new process starts on probation (``<file>.update.json`` names a deadline): if it is
not online by then, it puts ``<file>.previous`` back and execs it; the old version then
reports ``agent.update_rolled_back`` and ignores that version from then on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from guruconnect.protocol import UpdateAvailable, UpdateResult
from guruconnect.releases.decision import (
    Ignore,
    Install,
    Reason,
    Refuse,
    judge_artifact,
    judge_offer,
)
from guruconnect.releases.manifest import Manifest

log = structlog.get_logger(__name__)

#: How long a freshly installed version has to come online before it is rolled back.
PROBATION_SECONDS = 120.0
DOWNLOAD_TIMEOUT = 300.0
#: How long ``NEW --version`` may take (a single-file build unpacks itself first).
SMOKE_TEST_SECONDS = 60.0


def http_base(server: str) -> str:
    """The relay's HTTP(S) base URL from the agent's ``--server`` (ws:// works too)."""
    parts = urlsplit(server)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", "")).rstrip("/")


def _state_file(executable: Path) -> Path:
    return executable.with_name(executable.name + ".update.json")


def _rolled_back_file(executable: Path) -> Path:
    return executable.with_name(executable.name + ".rolled-back.json")


def previous_file(executable: Path) -> Path:
    return executable.with_name(executable.name + ".previous")


@dataclass
class Updater:
    server: str
    #: The file to replace; None when this is not a built agent (a venv, a package).
    executable: Path | None
    keys: Sequence[Ed25519PublicKey]
    current_version: str
    platform: str
    arch: str
    probation_seconds: float = PROBATION_SECONDS
    #: The agent's TLS settings (a private CA), so downloads trust what the relay does.
    tls: ssl.SSLContext | None = None
    #: Replaces the process with the file at the path (tests record the call instead).
    restart: Callable[[Path], NoReturn] = field(default=lambda path: exec_file(path))

    def refused(self, decision: Refuse, version: str = "") -> UpdateResult:
        log.warning(decision.line, version=version)
        return UpdateResult(
            outcome=UpdateResult.OUTCOME_REFUSED,
            version=version,
            reason=decision.reason.value,
            detail=decision.detail,
        )

    def judge(
        self, offer: UpdateAvailable, now: datetime | None = None
    ) -> Install | Ignore | Refuse:
        return judge_offer(
            offer.manifest,
            offer.signature,
            keys=self.keys,
            current_version=self.current_version,
            platform=self.platform,
            arch=self.arch,
            now=now or datetime.now(UTC),
        )

    def download(self, manifest: Manifest) -> Path | Refuse:
        """Fetch the file beside the running one and check it against the manifest.

        Blocking (run it in a thread). Returns the verified file, or the refusal.
        """
        assert self.executable is not None
        target = self.executable.with_name(f".{self.executable.name}.new")
        url = f"{http_base(self.server)}/downloads/{manifest.filename}"
        digest, size = hashlib.sha256(), 0
        try:
            with (
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT, context=self.tls) as response,  # noqa: S310 - http(s) only, from --server
                target.open("wb") as out,
            ):
                # Never read more than the signed size (plus one byte, to notice more).
                while chunk := response.read(min(1 << 20, manifest.size + 1 - size)):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                    if size > manifest.size:
                        break
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            target.unlink(missing_ok=True)
            return Refuse(Reason.DOWNLOAD_FAILED, f"cannot download {url}: {exc}")
        refusal = judge_artifact(manifest, size=size, sha256=digest.hexdigest())
        if refusal is None:
            target.chmod(0o755)
            refusal = self.smoke_test(target, manifest)
        if refusal is not None:
            target.unlink(missing_ok=True)
            return refusal
        return target

    def smoke_test(self, new_file: Path, manifest: Manifest) -> Refuse | None:
        """Run ``NEW --version`` before swapping: a file that does not start, hangs, or is
        not the version it was signed as is refused while the running file is untouched."""
        try:
            result = subprocess.run(  # noqa: S603 - our own verified file, fixed arguments
                [str(new_file), "--version"],
                capture_output=True,
                text=True,
                timeout=SMOKE_TEST_SECONDS,
                env=fresh_environment(),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Refuse(Reason.DOES_NOT_START, f"the new file does not run: {exc}")
        printed = result.stdout.strip()
        if result.returncode != 0 or printed != manifest.version:
            return Refuse(
                Reason.DOES_NOT_START,
                f"the new file printed {printed[:40]!r} (exit {result.returncode}) for "
                f"--version, not {manifest.version!r}",
            )
        return None

    def swap(self, new_file: Path, manifest: Manifest) -> None:
        """Keep the running file as ``.previous``, move the new one in, start probation."""
        assert self.executable is not None
        previous = previous_file(self.executable)
        staging = previous.with_name(previous.name + ".tmp")
        staging.unlink(missing_ok=True)
        os.link(self.executable, staging)
        staging.replace(previous)
        _write_json(
            _state_file(self.executable),
            {
                "version": manifest.version,
                "previous_version": self.current_version,
                "deadline": time.time() + self.probation_seconds,
            },
        )
        try:
            new_file.replace(self.executable)
        except OSError:
            _state_file(self.executable).unlink(missing_ok=True)
            raise
        _fsync_dir(self.executable.parent)

    def is_rolled_back_version(self, version: str) -> bool:
        if self.executable is None:
            return False
        data = _read_json(_rolled_back_file(self.executable))
        return data is not None and data.get("version") == version

    # -- probation (the new process) -----------------------------------------------------

    def probation(self) -> dict[str, object] | None:
        return None if self.executable is None else _read_json(_state_file(self.executable))

    def confirm(self) -> UpdateResult | None:
        """Called once online: the update worked."""
        state = self.probation()
        if state is None or self.executable is None:
            return None
        _state_file(self.executable).unlink(missing_ok=True)
        log.info("update confirmed: online", version=state.get("version"))
        return UpdateResult(
            outcome=UpdateResult.OUTCOME_INSTALLED,
            version=str(state.get("version", "")),
            detail=f"updated from {state.get('previous_version', '')}",
        )

    def rollback(self, why: str) -> None:
        """Put the previous file back and remember the failed version (then exec it)."""
        assert self.executable is not None
        state = self.probation() or {}
        previous = previous_file(self.executable)
        _write_json(
            _rolled_back_file(self.executable),
            {
                "version": state.get("version", self.current_version),
                "reason": why,
                "reported": False,
            },
        )
        _state_file(self.executable).unlink(missing_ok=True)
        log.error("update rolled back", version=state.get("version"), why=why)
        os.replace(previous, self.executable)
        _fsync_dir(self.executable.parent)

    def rolled_back_report(self) -> UpdateResult | None:
        """The old version, back after a rollback, reports it once."""
        if self.executable is None:
            return None
        path = _rolled_back_file(self.executable)
        data = _read_json(path)
        if not data or data.get("reported"):
            return None
        _write_json(path, {**data, "reported": True})
        return UpdateResult(
            outcome=UpdateResult.OUTCOME_ROLLED_BACK,
            version=str(data.get("version", "")),
            reason="not_online",
            detail=str(data.get("reason", "")),
        )


def fresh_environment() -> dict[str, str]:
    """This environment, marked so a PyInstaller build starts as a new program rather than
    as a child of the running one (which would reuse the running build's unpacked files)."""
    return {**os.environ, "PYINSTALLER_RESET_ENVIRONMENT": "1"}


def exec_file(executable: Path) -> NoReturn:
    """Replace this process with ``executable`` and the same arguments (same PID, so a
    service manager sees one process throughout)."""
    os.execve(executable, [str(executable), *sys.argv[1:]], fresh_environment())  # noqa: S606


def _write_json(path: Path, data: dict[str, object]) -> None:
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
