"""The join file's name and ``guruconnect://`` links: literal strings in, a target or a
refusal out. Every hostile shape the issue names is here; each would connect somewhere if
its rule were dropped."""

from __future__ import annotations

import pytest

from guruconnect.agent.join_target import (
    MAX_LINK_CHARS,
    BadTarget,
    JoinTarget,
    Server,
    join_file_name,
    link_for,
    parse_join_file_name,
    parse_link,
    parse_server,
)

CODE = "K7QX2MZ9RB"
SERVER = Server("https", "support.example.com", 8443)


def test_file_name_round_trips() -> None:
    name = join_file_name(CODE, SERVER)
    assert name == "guruconnect-join_K7QX2-MZ9RB_https_support.example.com_8443"
    assert parse_join_file_name(name) == JoinTarget(CODE, SERVER)
    windows = join_file_name(CODE, SERVER, windows=True)
    assert windows.endswith(".exe")
    assert parse_join_file_name(windows) == JoinTarget(CODE, SERVER)


@pytest.mark.parametrize("suffix", [" (1)", "(2)", " (13)"])
def test_a_browsers_second_download_still_parses(suffix: str) -> None:
    name = join_file_name(CODE, SERVER) + suffix
    assert parse_join_file_name(name) == JoinTarget(CODE, SERVER)


def test_other_names_are_not_join_files() -> None:
    assert parse_join_file_name("guruconnect") is None
    assert parse_join_file_name("guruconnect-linux-x86_64") is None


@pytest.mark.parametrize(
    "name",
    [
        "guruconnect-join_K7QX2-MZ9R_https_h.example_443",  # code too short
        "guruconnect-join_K7QX2-MZ9RI_https_h.example_443",  # I is not in the alphabet
        "guruconnect-join_K7QX2-MZ9RB_ftp_h.example_443",  # scheme
        "guruconnect-join_K7QX2-MZ9RB_HTTPS_h.example_443",  # scheme is exact
        "guruconnect-join_K7QX2-MZ9RB_https_h.example_0",  # port
        "guruconnect-join_K7QX2-MZ9RB_https_h.example_65536",
        "guruconnect-join_K7QX2-MZ9RB_https_h.example_+443",
        "guruconnect-join_K7QX2-MZ9RB_https_h.example_443_extra",
        "guruconnect-join_K7QX2-MZ9RB_https_user@h.example_443",  # userinfo
        "guruconnect-join_K7QX2-MZ9RB_https_h.exämple_443",  # non-ASCII host
        "guruconnect-join_K7QX2-MZ9RB_https_xn--exmple-cua.com_443",  # punycode look-alike
        "guruconnect-join_K7QX2-MZ9RB_https_999.1.1.1_443",  # not an IPv4 address
        "guruconnect-join_K7QX2-MZ9RB_https_-h.example_443",
        "guruconnect-join_K7QX2-MZ9RB_https__443",
    ],
)
def test_malformed_join_names_are_refused(name: str) -> None:
    with pytest.raises(BadTarget):
        parse_join_file_name(name)


GOOD = "guruconnect://join?server=https://support.example.com:8443&code=K7QX2-MZ9RB"


def test_the_documented_link_parses_and_round_trips() -> None:
    target = parse_link(GOOD)
    assert target == JoinTarget(CODE, SERVER)
    assert parse_link(link_for(target)) == target
    encoded = "guruconnect://join?server=https%3A%2F%2Fsupport.example.com%3A8443&code=K7QX2MZ9RB"
    assert parse_link(encoded) == target


HOSTILE = {
    "other scheme": "https://join?server=https://h.example&code=K7QX2-MZ9RB",
    "scheme case": "GuruConnect://join?server=https://h.example&code=K7QX2-MZ9RB",
    "other action": "guruconnect://install?server=https://h.example&code=K7QX2-MZ9RB",
    "option injection in the action": "guruconnect://--server=https://evil?code=K7QX2-MZ9RB",
    "extra key": GOOD + "&unattended=1",
    "option as a key": GOOD + "&--server=https://evil.example",
    "duplicate server": GOOD + "&server=https://evil.example",
    "duplicate code": "guruconnect://join?code=K7QX2-MZ9RB&server=https://h.example&code=K7QX2-MZ9RB",
    "missing code": "guruconnect://join?server=https://h.example",
    "%00 in the code": "guruconnect://join?server=https://h.example&code=K7QX2-MZ9RB%00",
    "%00 in the server": "guruconnect://join?server=https://h.example%00.evil&code=K7QX2-MZ9RB",
    "raw NUL": "guruconnect://join?server=https://h.example&code=K7QX2-MZ9RB\x00",
    "newline": "guruconnect://join?server=https://h.example&code=K7QX2-MZ9RB\n--server",
    "space (a second argument)": GOOD + " --server https://evil.example",
    "encoded space": GOOD + "%20--server",
    "double encoding": "guruconnect://join?server=https%253A%252F%252Fevil&code=K7QX2-MZ9RB",
    "userinfo": "guruconnect://join?server=https://h.example@evil.example&code=K7QX2-MZ9RB",
    "encoded userinfo": "guruconnect://join?server=https://h.example%40evil.example&code=K7QX2-MZ9RB",
    "path on the server": "guruconnect://join?server=https://h.example/x&code=K7QX2-MZ9RB",
    "server without scheme": "guruconnect://join?server=h.example:443&code=K7QX2-MZ9RB",
    "ftp server": "guruconnect://join?server=ftp://h.example&code=K7QX2-MZ9RB",
    "javascript server": "guruconnect://join?server=javascript:alert(1)&code=K7QX2-MZ9RB",
    "unicode host": "guruconnect://join?server=https://h.\u0435xample.com&code=K7QX2-MZ9RB",
    "encoded unicode host": "guruconnect://join?server=https://h.%D0%B5xample.com&code=K7QX2-MZ9RB",
    "punycode host": "guruconnect://join?server=https://xn--exmple-cua.com&code=K7QX2-MZ9RB",
    "fullwidth colon": "guruconnect://join?server=https://h.example\uff1a443&code=K7QX2-MZ9RB",
    "IPv6 literal": "guruconnect://join?server=https://[::1]:443&code=K7QX2-MZ9RB",
    "fragment": GOOD + "#frag",
    "bad code": "guruconnect://join?server=https://h.example&code=K7QX2-MZ9R0",
    "very long": GOOD + "&x=" + "A" * 100_000,
    "long but under the field limit": "guruconnect://join?server=https://"
    + "a" * (MAX_LINK_CHARS)
    + ".example&code=K7QX2-MZ9RB",
    "empty": "",
}


@pytest.mark.parametrize("link", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_links_are_refused(link: str) -> None:
    with pytest.raises(BadTarget):
        parse_link(link)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h.example", Server("https", "h.example", 443)),
        ("http://10.0.0.5:3002/", Server("http", "10.0.0.5", 3002)),
        ("https://H.Example:443", Server("https", "h.example", 443)),
    ],
)
def test_servers(text: str, expected: Server) -> None:
    assert parse_server(text) == expected
