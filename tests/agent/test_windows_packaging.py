"""The Windows packaging, checked off Windows: command-line quoting, the service the
installer registers, and the ``guruconnect://`` registry values.

The installer (packaging/windows/guruconnect.iss) is plain text; these tests hold its
registry values and ``sc.exe`` calls to what ``guruconnect.agent.service`` renders, so the
two cannot drift apart. Nothing here runs Windows: see docs/agent.md for what never ran.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PureWindowsPath

import pytest

from guruconnect.agent.service import (
    Install,
    ServiceDefinition,
    url_handler_registry,
    windows_command_line,
    windows_definition,
    windows_quote,
    windows_sc_commands,
)
from guruconnect.agent.transport import EXIT_REFUSED

ROOT = Path(__file__).parents[2]
ISS = ROOT / "packaging" / "windows" / "guruconnect.iss"
APP_EXE = PureWindowsPath(r"{app}\guruconnect.exe")
KEY_FILE = PureWindowsPath(r"{commonappdata}\GuruConnect\agent.key")


def parse_windows_args(line: str) -> list[str]:
    """Split a command line the way the MSVC runtime does (the documented rules: 2N
    backslashes + quote -> N backslashes and a quote toggle; 2N+1 -> N and a literal
    quote; other backslashes are literal)."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    have_arg = False
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\":
            run = len(line[i:]) - len(line[i:].lstrip("\\"))
            if i + run < len(line) and line[i + run] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    i += run + 1
                else:
                    i += run
                have_arg = True
                continue
            current.append("\\" * run)
            i += run
            have_arg = True
            continue
        if char == '"':
            in_quotes = not in_quotes
            have_arg = True
        elif char in " \t" and not in_quotes:
            if have_arg:
                args.append("".join(current))
                current, have_arg = [], False
        else:
            current.append(char)
            have_arg = True
        i += 1
    if have_arg:
        args.append("".join(current))
    return args


TRICKY = [
    "plain",
    "with space",
    "",
    'quote"inside',
    "trailing\\",
    "trailing space\\",
    "C:\\Program Files\\GuruConnect\\guruconnect.exe",
    'back\\\\"slash',
    "tab\there",
    "https://support.example.com/path?x=1&y=2",
]


@pytest.mark.parametrize("argument", TRICKY)
def test_windows_quoting_round_trips_and_matches_the_standard_library(argument: str) -> None:
    quoted = windows_quote(argument)
    assert parse_windows_args(f"prog {quoted}") == ["prog", argument]
    # The parser agrees with CPython's own implementation of the same rules.
    assert parse_windows_args(subprocess.list2cmdline(["prog", argument])) == ["prog", argument]


def test_the_program_path_is_always_quoted_no_unquoted_service_path() -> None:
    line = windows_command_line([r"C:\Program Files\GuruConnect\guruconnect.exe", "agent"])
    assert line == r'"C:\Program Files\GuruConnect\guruconnect.exe" agent'
    with pytest.raises(ValueError, match="not a Windows path"):
        windows_command_line(['C:\\evil" --server x', "agent"])


def test_the_windows_service_runs_the_agent_with_the_key_in_a_file() -> None:
    service = windows_definition("https://support.example.com")
    create, description, failure = windows_sc_commands(service)
    assert create[:3] == ["sc.exe", "create", "GuruConnectAgent"]
    options = dict(zip(create[3::2], create[4::2], strict=True))
    assert options["start="] == "auto"
    assert options["obj="] == "LocalSystem"
    bin_path = parse_windows_args(options["binPath="])
    assert bin_path == [
        r"C:\Program Files\GuruConnect\guruconnect.exe",
        "agent",
        "--server",
        "https://support.example.com",
        "--key-file",
        r"C:\ProgramData\GuruConnect\agent.key",
    ]
    assert "cak_" not in " ".join(create)
    assert description[-1] == "GuruConnect agent (remote support)"
    assert failure[-1] == "restart/5000/restart/5000/restart/5000"
    with pytest.raises(ValueError, match="environment"):
        windows_sc_commands(ServiceDefinition("x", "x", "x", ("a",), environment={"A": "1"}))


def test_one_definition_for_linux_and_windows() -> None:
    """The systemd unit and the SCM registration come from the same ServiceDefinition."""
    linux = Install(
        server="https://relay.example", key="cak_x", user="alice", base_command=("/opt/gc",)
    ).definition()
    windows = windows_definition("https://relay.example")
    assert (
        linux.command[1:4] == windows.command[1:4] == ("agent", "--server", "https://relay.example")
    )
    assert linux.no_restart_exit_codes == windows.no_restart_exit_codes == (EXIT_REFUSED,)
    assert linux.command[0] == "/opt/gc"


def inno_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def iss_section(begin: str) -> str:
    text = ISS.read_text()
    match = re.search(rf"; BEGIN {begin}\n(.*?); END {begin}", text, re.S)
    assert match, f"no {begin} block in {ISS}"
    return match.group(1)


def test_the_installer_writes_the_url_handler_the_code_defines() -> None:
    values = url_handler_registry(APP_EXE)
    assert values[-1].data == '"{app}\\guruconnect.exe" open-link "%1"'
    lines = [line for line in iss_section("url-handler").splitlines() if line.startswith("Root:")]
    assert len(lines) == len(values)
    for line, value in zip(lines, values, strict=True):
        assert "Root: HKCU;" in line
        assert f"Subkey: {inno_string(value.key)};" in line
        assert f"ValueName: {inno_string(value.name)};" in line
        assert f"ValueData: {inno_string(value.data)}" in line


def test_the_installer_registers_the_service_the_code_defines() -> None:
    service = windows_definition("{param:Server}", executable=APP_EXE, key_file=KEY_FILE)
    commands = windows_sc_commands(service)
    lines = [line for line in iss_section("service").splitlines() if line.startswith("Filename:")]
    assert len(lines) == len(commands)
    for line, argv in zip(lines, commands, strict=True):
        assert line.startswith('Filename: "{sys}\\sc.exe";')
        parameters = " ".join(windows_quote(a) for a in argv[1:])
        assert f"Parameters: {inno_string(parameters)};" in line, (line, parameters)
