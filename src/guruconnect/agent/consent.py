"""When the person at the machine must be asked.

The server's policy for the machine and the agent's own setting must both say
"unattended" for a session to start without asking: ``--unattended`` on the agent cannot
override a server that requires consent (support-code sessions always do), and a server
that allows unattended access cannot take over an agent whose owner did not opt in.
"""

from __future__ import annotations

#: How long the local user has when the agent asks on its own (the server did not).
LOCAL_TIMEOUT_SECONDS = 30


def must_ask(*, server_requires: bool, agent_unattended: bool) -> bool:
    return server_requires or not agent_unattended
