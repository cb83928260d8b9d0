"""Starting another part of GuruConnect as a child process, from a venv or a frozen build.

A virtualenv runs ``python -m guruconnect ...``; a PyInstaller build has no interpreter to
hand ``-m`` to, only its own file. Both go through the hidden ``--run-module NAME`` entry of
the ``guruconnect`` command, so the child is started the same way everywhere.
"""

from __future__ import annotations

import runpy
import sys

#: The only modules ``--run-module`` runs: it is an internal entry, not a way to run code.
RUNNABLE_MODULES = frozenset({"guruconnect.agent.desktop_ui"})

RUN_MODULE = "--run-module"


def frozen() -> bool:
    """True inside a PyInstaller build (one file holding the interpreter and the code)."""
    return bool(getattr(sys, "frozen", False))


def cli_command(*args: str) -> list[str]:
    """The argv that runs ``guruconnect ARGS...`` with this same installation."""
    if frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "guruconnect", *args]


def module_command(module: str, *args: str) -> list[str]:
    """The argv that runs ``module`` as ``__main__`` in a child process."""
    if module not in RUNNABLE_MODULES:
        raise ValueError(f"not a runnable module: {module}")
    return cli_command(RUN_MODULE, module, *args)


def run_module_from_argv(argv: list[str]) -> bool:
    """Run ``guruconnect --run-module NAME [ARGS...]`` if ``argv`` asks for it.

    Returns False when ``argv`` is an ordinary command line. A module outside the allowed
    set is an error (exit 2), never imported.
    """
    if len(argv) < 2 or argv[1] != RUN_MODULE:
        return False
    if len(argv) < 3 or argv[2] not in RUNNABLE_MODULES:
        name = argv[2] if len(argv) > 2 else ""
        sys.stderr.write(f"guruconnect: {RUN_MODULE}: not a runnable module: {name!r}\n")
        raise SystemExit(2)
    module = argv[2]
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return True
