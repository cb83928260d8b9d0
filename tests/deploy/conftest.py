"""The real nginx and Caddy (Debian's) on loopback, configured from the files in
``deploy/`` (ports and paths substituted, nothing else), in front of a real server, with
TLS from a test CA (trustme). Chromium trusts that CA's leaf through
``--ignore-certificate-errors-spki-list`` (the SPKI hash of the leaf both proxies present),
so pages, fetches and WebSockets are all checked against that one certificate.

The browser here is module-scoped (it is closed before tests/web starts its own:
Playwright's sync API allows one running instance per thread).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, sync_playwright

from guruconnect.server.background import free_port
from guruconnect.server.web.routes import WIRE_BUNDLE

# The real agent (a process on Xvfb) for the wss:// path.
from tests.agent.conftest import start_agent, xserver  # noqa: F401
from tests.conftest import IN_CI
from tests.timing import scaled, wait_until
from tests.web.conftest import CHROMIUM

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = "/usr/sbin/nginx"
CADDY = "/usr/bin/caddy"


def require(path: str) -> None:
    if Path(path).exists():
        return
    message = f"{path} is not installed (make system installs it)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    #: base64(sha256(SubjectPublicKeyInfo)) of the leaf: what Chromium is told to accept.
    spki: str

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    ca_file, cert_file, key_file = where / "ca.pem", where / "cert.pem", where / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    # The chain file the proxies serve.
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    certificate = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki_der = certificate.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    spki = base64.b64encode(hashlib.sha256(spki_der).digest()).decode()
    return Pki(ca, ca_file, cert_file, key_file, spki)


@pytest.fixture(scope="module")
def browser(pki: Pki) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} is not installed (make system installs it)")
    if not WIRE_BUNDLE.is_file():
        pytest.fail(f"{WIRE_BUNDLE} is missing: run `make setup` (npm ci + build)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                f"--ignore-certificate-errors-spki-list={pki.spki}",
            ],
        )
        yield browser
        browser.close()


# -- the proxies ------------------------------------------------------------------------------


def substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Each pattern must match (so a changed shipped file fails here, not silently)."""
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count, f"deploy file no longer has {pattern!r}"
    return text


def nginx_site(
    *, port: int, http_port: int, upstream: int, pki: Pki, default_host: bool = False
) -> str:
    """deploy/nginx.conf for loopback ports and the test certificate.

    ``default_host``: without the ``proxy_set_header Host $host`` lines, so nginx sends
    its default ``Host: $proxy_host`` (the upstream's address: the original 4003 finding).
    """
    text = (DEPLOY / "nginx.conf").read_text()
    replacements = [
        (r"^\s*listen \[::\]:\d+.*\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl", f"listen 127.0.0.1:{port} ssl"),
        (r"server_name support\.example\.com;", "server_name localhost;"),
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {pki.cert_file};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {pki.key_file};"),
        (r"http://127\.0\.0\.1:3002;", f"http://127.0.0.1:{upstream};"),
    ]
    if default_host:
        replacements.append((r"^\s*proxy_set_header Host \$host;\n", ""))
    return substitute(text, replacements)


def caddyfile(*, port: int, http_port: int, upstream: int, pki: Pki, storage: Path) -> str:
    """deploy/Caddyfile with the test certificate instead of ACME, on loopback ports."""
    text = (DEPLOY / "Caddyfile").read_text()
    site = substitute(
        text,
        [
            (r"^support\.example\.com \{", f"https://localhost:{port} {{"),
            (r"^(\s*)# tls \S+ \S+$", rf"\1tls {pki.cert_file} {pki.key_file}"),
            (r"reverse_proxy 127\.0\.0\.1:3002", f"reverse_proxy 127.0.0.1:{upstream}"),
        ],
    )
    # Global options for a test: no admin endpoint, loopback only, no ACME, no trust store.
    options = (
        "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {http_port}\n\thttps_port {port}\n"
        "\tauto_https disable_redirects\n\tskip_install_trust\n"
        f"\tstorage file_system {storage}\n}}\n\n"
    )
    return options + site


@dataclass
class Proxy:
    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serving(url: str, pki: Pki) -> bool:
    try:
        response = httpx.get(url + "/health", verify=pki.client_context(), timeout=2)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def start_proxy(
    kind: str, *, upstream: int, port: int, pki: Pki, where: Path, default_host: bool = False
) -> Proxy:
    where.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    log_path = where / f"{kind}.log"
    env = dict(os.environ)
    if kind == "nginx":
        require(NGINX)
        site = where / "site.conf"
        site.write_text(
            nginx_site(
                port=port,
                http_port=http_port,
                upstream=upstream,
                pki=pki,
                default_host=default_host,
            )
        )
        # The main configuration a distribution ships, reduced to what a test needs:
        # everything under `where`, in the foreground.
        (where / "nginx.conf").write_text(
            f"""
user root;
worker_processes 1;
daemon off;
pid {where}/nginx.pid;
error_log {log_path} info;
events {{ worker_connections 256; }}
http {{
    access_log {where}/access.log;
    client_body_temp_path {where}/body;
    proxy_temp_path {where}/proxy;
    fastcgi_temp_path {where}/fastcgi;
    uwsgi_temp_path {where}/uwsgi;
    scgi_temp_path {where}/scgi;
    include {site};
}}
"""
        )
        command = [NGINX, "-p", str(where), "-e", str(log_path), "-c", str(where / "nginx.conf")]
    else:
        require(CADDY)
        config = where / "Caddyfile"
        config.write_text(
            caddyfile(
                port=port, http_port=http_port, upstream=upstream, pki=pki, storage=where / "data"
            )
        )
        env.update(HOME=str(where), XDG_DATA_HOME=str(where), XDG_CONFIG_HOME=str(where))
        command = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
    with (where / f"{kind}.out").open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=where
        )
    proxy = Proxy(kind, f"https://localhost:{port}", process, log_path)

    def up() -> bool:
        if process.poll() is not None:
            output = (where / f"{kind}.out").read_text(errors="replace")
            raise AssertionError(f"{kind} exited: {output[-2000:]} {proxy.log()[-2000:]}")
        return _serving(proxy.url, pki)

    try:
        wait_until(up, 20, f"{kind} serving")
    except BaseException:
        proxy.stop()
        raise
    return proxy


@pytest.fixture
def proxies() -> Iterator[Callable[..., Proxy]]:
    """Start proxies; each is stopped at teardown."""
    started: list[Proxy] = []

    def start(kind: str, **kwargs: object) -> Proxy:
        proxy = start_proxy(kind, **kwargs)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
