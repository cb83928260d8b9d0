"""Why a session ended: the ``end_reason`` the relay stores and sends to viewers.

The web viewer reads the same table from ``/web/constants.json`` (never a hand copy), so a
reason added here is shown in words there at once.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["END_REASON_TEXT", "EndReason"]


class EndReason(StrEnum):
    """A session's end reason (``sessions.end_reason``, ``SessionState.reason``)."""

    CONSENT_DENIED = "consent_denied"
    CONSENT_TIMEOUT = "consent_timeout"
    ENDED_BY_TECHNICIAN = "ended_by_technician"
    ENDED_AT_MACHINE = "ended_at_machine"
    AGENT_DISCONNECTED = "agent_disconnected"
    #: The agent was stopped on purpose (Ctrl+C, service stop, tray Exit): it said so
    #: before closing, so no reconnect is waited for.
    AGENT_STOPPED = "agent_stopped"
    AGENT_REFUSED = "agent_refused"
    SERVER_RESTART = "server_restart"
    SUPERSEDED = "superseded"


#: What the viewer says for each reason (a sentence, shown as the session's status).
END_REASON_TEXT: dict[EndReason, str] = {
    EndReason.CONSENT_DENIED: "Denied: the person at the machine declined.",
    EndReason.CONSENT_TIMEOUT: "Denied: nobody answered the consent prompt.",
    EndReason.ENDED_BY_TECHNICIAN: "Ended by a technician.",
    EndReason.ENDED_AT_MACHINE: "Ended by the person at the machine.",
    EndReason.AGENT_DISCONNECTED: "Ended: the agent went away.",
    EndReason.AGENT_STOPPED: "Ended: the agent was stopped on the remote machine.",
    EndReason.AGENT_REFUSED: "Ended: the agent refused the session.",
    EndReason.SERVER_RESTART: "Ended: the server restarted.",
    EndReason.SUPERSEDED: "Ended: another session with this machine took its place.",
}
