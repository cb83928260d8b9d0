"""Install commands shown on the Agent keys page, built from the server's public URL.

Linux: download, check the SHA-256 the page shows, install the file under /opt, write the
key into a 0600 file (never on a command line), install the systemd service. Windows:
the same steps in PowerShell (never run here; see docs/agent.md).
"""

from __future__ import annotations

import shlex

#: Replaced by the browser with the key it just received (the key never goes back to the
#: server, not even in a URL).
KEY_PLACEHOLDER = "__AGENT_KEY__"
LINUX_DIR = "/opt/guruconnect"
WINDOWS_DIR = r"$env:ProgramFiles\GuruConnect"


def linux(base_url: str, filename: str, sha256: str) -> str:
    url = shlex.quote(f"{base_url}/downloads/{filename}")
    server = shlex.quote(base_url)
    binary = f"{LINUX_DIR}/guruconnect-agent"
    return "\n".join(
        [
            'cd "$(mktemp -d)"',
            f"curl -fsSL -o guruconnect-agent {url}",
            f"echo '{sha256}  guruconnect-agent' | sha256sum -c -",
            # The service runs as this user and updates its own file: it owns the folder.
            f'sudo install -D -o "$USER" -m 0755 guruconnect-agent {binary}',
            f'sudo chown "$USER" {LINUX_DIR}',
            f"(umask 077; printf '%s\\n' '{KEY_PLACEHOLDER}' > agent.key)",
            f'sudo {binary} agent install --server {server} --key-file agent.key --user "$USER"',
            "rm -f agent.key",
            "sudo systemctl daemon-reload && sudo systemctl enable --now guruconnect-agent",
        ]
    )


def windows(base_url: str, filename: str, sha256: str) -> str:
    def ps(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    return "\n".join(
        [
            f"$dir = {WINDOWS_DIR}; New-Item -ItemType Directory -Force $dir | Out-Null",
            "$exe = Join-Path $dir 'guruconnect.exe'",
            f"Invoke-WebRequest -UseBasicParsing -Uri {ps(f'{base_url}/downloads/{filename}')}"
            " -OutFile $exe",
            f"if ((Get-FileHash -Algorithm SHA256 $exe).Hash -ne {ps(sha256.upper())})"
            " { Remove-Item $exe; throw 'SHA-256 mismatch: not installing' }",
            f"$key = Join-Path $dir 'agent.key'; Set-Content -NoNewline -Path $key"
            f" -Value {ps(KEY_PLACEHOLDER)}",
            "icacls $key /inheritance:r /grant:r 'SYSTEM:R' 'Administrators:F' | Out-Null",
            f"& $exe agent install --server {ps(base_url)} --key-file $key",
        ]
    )
