"""TLS terminated by the server itself: one ``ssl.SSLContext``, its certificate reloaded on
SIGHUP (renewals without a restart; connections already open keep their session).

A new pair is first loaded into a scratch context, so a bad file (a key that does not
match, a half-written certificate) is refused with a log line and the served certificate
stays the old one.
"""

from __future__ import annotations

import signal
import ssl
from pathlib import Path
from types import FrameType

import structlog

log = structlog.get_logger(__name__)


class CertificateReloader:
    def __init__(self, context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file

    def reload(self) -> bool:
        """Load the files again; True when the new pair is served from now on."""
        try:
            scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            scratch.load_cert_chain(self.cert_file, self.key_file)
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate not reloaded; still serving the old one", error=str(exc))
            return False
        log.info("TLS certificate reloaded", cert_file=str(self.cert_file))
        return True

    def install_sighup(self) -> None:
        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signal.SIGHUP, on_hup)
