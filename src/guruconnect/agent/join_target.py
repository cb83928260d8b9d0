"""Where a one-time support agent connects: parsed from its own file name or from a
``guruconnect://`` link. No I/O here; every input is attacker-reachable text.

The join page serves the agent as ``guruconnect-join_<CODE>_<scheme>_<host>_<port>``
(``.exe`` on Windows): the file needs no arguments and no installer. A ``guruconnect://``
link can be opened by any web page, so both parsers accept one narrow shape and refuse
everything else with a ``BadTarget`` that says what is wrong:

- a code is 10 characters of the support-code alphabet (a dash after the fifth allowed);
- a server is ``http`` or ``https``, a DNS name or IPv4 address, a port 1-65535; no user
  information, no path, query or fragment, ASCII only (no look-alike Unicode hosts);
- a link is ``guruconnect://join?server=<server>&code=<code>``: that action only, those two
  keys once each, at most ``MAX_LINK_CHARS`` characters, no control characters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from guruconnect.server.auth.secrets_format import (
    SUPPORT_CODE_ALPHABET,
    SUPPORT_CODE_LENGTH,
    display_support_code,
)

JOIN_PREFIX = "guruconnect-join_"
LINK_SCHEME = "guruconnect"
MAX_LINK_CHARS = 512
MAX_HOST_CHARS = 253

_HALF = SUPPORT_CODE_LENGTH // 2
_CHAR = f"[{SUPPORT_CODE_ALPHABET}]"
_CODE = re.compile(rf"{_CHAR}{{{_HALF}}}-?{_CHAR}{{{SUPPORT_CODE_LENGTH - _HALF}}}")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
#: What a browser appends to a second download of the same name: `` (1)``, ``(2)``.
_DUPLICATE = re.compile(r" ?\([0-9]{1,3}\)$")
_FILE = re.compile(
    rf"{JOIN_PREFIX}(?P<code>[^_]+)_(?P<scheme>[^_]+)_(?P<host>[^_]+)_(?P<port>[^_]+)"
)


class BadTarget(ValueError):
    """The name or link is not one this agent accepts; the message says why."""


@dataclass(frozen=True, slots=True)
class Server:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class JoinTarget:
    """A support code and the one server it may be redeemed at."""

    code: str
    server: Server


def parse_code(text: str) -> str:
    """The code without its dash, or ``BadTarget``."""
    if not _CODE.fullmatch(text):
        raise BadTarget(
            f"a support code is {SUPPORT_CODE_LENGTH} characters from {SUPPORT_CODE_ALPHABET}"
        )
    return text.replace("-", "")


def parse_host(text: str) -> str:
    if not text or len(text) > MAX_HOST_CHARS or not text.isascii():
        raise BadTarget("the server's host must be a plain ASCII name or IPv4 address")
    host = text.lower()
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise BadTarget(f"{text!r} is not an IPv4 address") from None
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise BadTarget(f"{text!r} is not a host name")
    if any(label.startswith("xn--") for label in labels):
        raise BadTarget("internationalised (xn--) host names are refused: they can imitate others")
    return host


def parse_port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise BadTarget(f"{text!r} is not a port (1-65535)")
    return int(text)


def parse_scheme(text: str) -> str:
    if text not in ("https", "http"):
        raise BadTarget(f"the server's scheme must be https or http, not {text!r}")
    return text


def parse_server(text: str) -> Server:
    """``https://host[:port]`` exactly; the default port is the scheme's."""
    if not text.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise BadTarget("the server URL has spaces, control or non-ASCII characters")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise BadTarget("the server URL needs a scheme, e.g. https://support.example.com")
    scheme = parse_scheme(scheme)
    rest = rest.removesuffix("/")
    if any(c in rest for c in "/?#@\\%[]"):
        raise BadTarget("the server URL may hold only a host and a port")
    host, colon, port = rest.partition(":")
    return Server(
        scheme,
        parse_host(host),
        parse_port(port) if colon else (443 if scheme == "https" else 80),
    )


def join_file_name(code: str, server: Server, *, windows: bool = False) -> str:
    """The file name the join page gives the agent it serves for ``code``."""
    shown = display_support_code(parse_code(code))
    name = f"{JOIN_PREFIX}{shown}_{server.scheme}_{server.host}_{server.port}"
    return name + (".exe" if windows else "")


def parse_join_file_name(name: str) -> JoinTarget | None:
    """None if ``name`` is not a join agent's name at all; ``BadTarget`` if it claims to be
    one but is malformed; else the code and server bound into it."""
    if not name.startswith(JOIN_PREFIX):
        return None
    stem = name.removesuffix(".exe").removesuffix(".EXE")
    stem = _DUPLICATE.sub("", stem)
    match = _FILE.fullmatch(stem)
    if match is None:
        raise BadTarget(f"{name!r} is not guruconnect-join_CODE_SCHEME_HOST_PORT")
    server = Server(
        parse_scheme(match["scheme"]), parse_host(match["host"]), parse_port(match["port"])
    )
    return JoinTarget(parse_code(match["code"]), server)


def parse_link(text: str) -> JoinTarget:
    """A ``guruconnect://join?server=...&code=...`` link, or ``BadTarget``."""
    if len(text) > MAX_LINK_CHARS:
        raise BadTarget(f"the link is longer than {MAX_LINK_CHARS} characters")
    if not text.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise BadTarget("the link has spaces, control or non-ASCII characters")
    scheme, sep, rest = text.partition("://")
    if scheme != LINK_SCHEME or not sep:
        raise BadTarget(f"not a {LINK_SCHEME}:// link")
    parts = urlsplit(text)
    if parts.fragment or "#" in text:
        raise BadTarget("the link may not have a fragment")
    action = rest.split("?", 1)[0].removesuffix("/")
    if action != "join":
        raise BadTarget(f"unknown action {action!r}: the only action is join")
    try:
        pairs = parse_qsl(
            parts.query, keep_blank_values=True, strict_parsing=True, max_num_fields=2
        )
    except ValueError:
        raise BadTarget("the link needs server=... and code=..., nothing else") from None
    keys = [key for key, _ in pairs]
    if sorted(keys) != ["code", "server"]:
        raise BadTarget("the link needs server=... and code=..., once each, nothing else")
    values = dict(pairs)
    # parse_qsl decoded %XX once; a value that still holds an escape was encoded twice.
    for value in values.values():
        if "%" in value or unquote(value) != value:
            raise BadTarget("the link's values are encoded more than once")
    return JoinTarget(parse_code(values["code"]), parse_server(values["server"]))


def link_for(target: JoinTarget) -> str:
    return (
        f"{LINK_SCHEME}://join?server={target.server.url}&code={display_support_code(target.code)}"
    )
