"""How the agent trusts the relay's certificate.

By default: the system's CA store, with hostname checking (``wss://`` URLs). A private CA
is given with ``--ca-file`` (or ``GURUCONNECT_AGENT_CA_FILE``). The only way to skip
verification is ``--insecure-skip-tls-verify``, which warns at every start.

A certificate the agent does not trust ends it with :data:`EXIT_UNTRUSTED_CERTIFICATE`
and one line saying why: retrying cannot fix it, and an agent must never send its key to
a server it cannot authenticate.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

from guruconnect.agent.preflight import EXIT_TLS
from guruconnect.agent.transport import AgentExit

CA_FILE_ENV = "GURUCONNECT_AGENT_CA_FILE"
#: The relay's certificate is not trusted (wrong CA, wrong name, expired): a TLS failure.
EXIT_UNTRUSTED_CERTIFICATE = EXIT_TLS
INSECURE_WARNING = (
    "WARNING: --insecure-skip-tls-verify is set: the relay's certificate is NOT checked; "
    "anyone on the network path can read this machine's screen and take its key"
)


class TlsSetupError(Exception):
    """The CA file cannot be used; the message is one line."""


def client_context(ca_file: Path | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """The context ``wss://`` connections use."""
    if insecure:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot use CA file {ca_file}: {exc}") from None


def untrusted_certificate(exc: BaseException) -> AgentExit | None:
    """The exit for a failed certificate check anywhere in ``exc``'s chain, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            why = seen.verify_message or seen.reason or str(seen)
            return AgentExit(
                f"the relay's TLS certificate is not trusted ({why}); "
                f"give its CA with --ca-file or ${CA_FILE_ENV}",
                EXIT_UNTRUSTED_CERTIFICATE,
            )
        seen = seen.__cause__ or seen.__context__
    return None
