"""G7 (security.md §6): no open redirect. A return URL is taken only when it equals a registered
one under the documented normalisation (``broker/consent/return_urls.py``), and the person is
only ever sent to the registered string itself.

The bulk of the fuzzing runs here, against the pure matcher (Hypothesis, derandomized, well
over 500 distinct targets). ``test_consent_security_redirects.py`` sends the bypass corpus and a
Hypothesis sample through ``POST /v1/consent-requests`` and follows accepted variants through
whole flows to the final 303; it takes the oracle, the strategies and the corpus from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.consent.return_urls import matches_registered
from tests.flow import PORTAL_RETURN


@dataclass(frozen=True)
class Registered:
    url: str
    scheme: str
    host: str
    port: str  # "" or ":<digits>"
    path: str
    query: str  # "" or "?…"


REGISTERED = (
    Registered(PORTAL_RETURN, "https", "portal.example", "", "/ebevis/return", ""),
    Registered(
        "https://portal.example:8443/cb?tenant=a&x=1",
        "https",
        "portal.example",
        ":8443",
        "/cb",
        "?tenant=a&x=1",
    ),
    Registered(
        "https://Portal.Example/Case/Return", "https", "Portal.Example", "", "/Case/Return", ""
    ),
    Registered("http://127.0.0.1:8080/return", "http", "127.0.0.1", ":8080", "/return", ""),
)
REGISTERED_URLS = tuple(r.url for r in REGISTERED)

# --- the oracle: the module docstring's rules, written out independently ----------------------

_DEFAULT_PORTS = {"https": 443, "http": 80}
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<host>[A-Za-z0-9._~%!$&'()*+,;=-]+)"  # no userinfo "@", no brackets, no port ":"
    r"(?::(?P<port>[0-9]*))?"
    r"(?P<path>/[^?#]*)?"
    r"(?P<query>\?[^#]*)?"  # no fragment
)


def documented_form(url: str) -> str | None:
    """The URL as the documented normalisation compares it, or None where the rules refuse it
    (or where it could never equal a registered URL, which the comparison alone shows)."""
    if re.search(r"[^\x21-\x7e]|\\", url):  # printable ASCII only, no backslash
        return None
    match = _URL.fullmatch(url)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    port = int(match["port"]) if match["port"] else _DEFAULT_PORTS[scheme]
    if port > 65535:
        return None
    netloc = match["host"].lower() + ("" if port == _DEFAULT_PORTS[scheme] else f":{port}")
    return f"{scheme}://{netloc}{match['path'] or '/'}{match['query'] or ''}"


def expected_match(candidate: str) -> str | None:
    form = documented_form(candidate)
    if form is None:
        return None
    return next((url for url in REGISTERED_URLS if documented_form(url) == form), None)


def matcher(candidate: str) -> str | None:
    """The broker's matcher (it must never raise: a crash fails the test)."""
    return matches_registered(candidate, REGISTERED_URLS)


# --- the candidates ---------------------------------------------------------------------------

_NOISE = [*"/\\@:.?#%&=;[]~-_+!$'()*,", " ", "\t", "\n", "\r", "\x00", "\x7f", "A", "z", "0"]
_NOISE += ["é", "\u3002", "\uff0e", "\uff0f", "%2e", "%2f", "%40", "%5c", "%09", "%0a", "%00"]


@st.composite
def near_registered(draw: st.DrawFn) -> str:
    """A registered URL taken apart and put together with lookalike parts and small edits."""
    base = draw(st.sampled_from(REGISTERED))
    host = base.host
    scheme = draw(
        st.sampled_from(
            [base.scheme] * 4
            + [base.scheme.upper(), base.scheme.title(), "https", "http", "HTTP", "javascript"]
            + ["data", "ftp", "wss", "", "https+x", "hxxps", "https "]
        )
    )
    separator = draw(
        st.sampled_from(["://"] * 6 + [":", ":/", ":///", "//", ":\\\\", ":/\\", "://\\", ":\\/"])
    )
    userinfo = draw(
        st.sampled_from(
            [""] * 6 + ["user@", f"{host}@", "evil.example@", ":@", "a:b@", "@", f"{host}:443@"]
        )
    )
    hostname = draw(
        st.sampled_from(
            [host] * 6
            + [host.upper(), host.lower(), host.swapcase(), host + ".", "." + host]
            + [host + ".evil.example", "evil.example", "evil-" + host, "evil." + host]
            + [host.replace(".", "-"), host[:-1], host + "e", "xn--" + host, host + "%2f"]
            + [host + "%2F.evil.example", host.replace(".", "%2e"), host + "%00", host + "#"]
            + [host + "?.evil.example", host + "/.evil.example", host + "\\.evil.example"]
        )
    )
    port = draw(
        st.sampled_from(
            [base.port] * 6
            + ["", ":", ":443", ":0443", ":00443", ":80", ":8443", ":8080", ":0", ":65536"]
            + [":-1", ":+443", ": 443", ":443:443", ":99999999", ":44 3", ":0x1bb"]
        )
    )
    path = base.path
    path = draw(
        st.sampled_from(
            [path] * 6
            + [path + "/", path.upper(), path.lower(), path + "/.", path + "/..", "", "/"]
            + [path.replace("/", "/./", 1), path.replace("/", "/../", 1), "/" + path]
            + ["//evil.example" + path, path.replace("/", "%2F"), path + "%00", path + ";x"]
            + [path + "%2f..%2fevil", path.replace("/", "\\"), path + "\\..\\evil"]
        )
    )
    query = draw(
        st.sampled_from(
            [base.query] * 6
            + ["", "?", "?a=b", base.query + "&x=1", "?next=https://evil.example"]
            + [base.query.upper(), base.query + "#"]
        )
    )
    fragment = draw(st.sampled_from([""] * 8 + ["#", "#x", "#@evil.example", "#" + base.url]))
    url = scheme + separator + userinfo + hostname + port + path + query + fragment
    edits = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=200),
                st.sampled_from(["insert", "delete", "replace", "flip case"]),
                st.sampled_from(_NOISE),
            ),
            max_size=3,
        )
    )
    for position, operation, noise in edits:
        at = position % (len(url) + 1)
        if operation == "insert":
            url = url[:at] + noise + url[at:]
        elif operation == "delete":
            url = url[:at] + url[at + 1 :]
        elif operation == "replace":
            url = url[:at] + noise + url[at + 1 :]
        else:
            url = url[:at] + url[at:].swapcase()
    return url


def _flip_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def equivalent_variant(draw: st.DrawFn) -> str:
    """A registered URL changed only where the rules say it makes no difference (scheme and
    host case, the default port written out), sometimes with one small edit on top."""
    base = draw(st.sampled_from(REGISTERED))
    default = str(_DEFAULT_PORTS[base.scheme])
    ports = [base.port] if base.port else ["", ":", f":{default}", f":0{default}", f":00{default}"]
    url = (
        _flip_case(draw, base.scheme)
        + "://"
        + _flip_case(draw, base.host)
        + draw(st.sampled_from(ports))
        + base.path
        + base.query
    )
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(url)))
        url = url[:at] + draw(st.sampled_from(_NOISE)) + url[at:]
    return url


CANDIDATES = st.one_of(
    near_registered(), near_registered(), near_registered(), equivalent_variant(), st.text()
)

# Hand-written bypasses of the registered PORTAL_RETURN (https://portal.example/ebevis/return).
BYPASS_CORPUS = [
    # scheme-relative, missing or odd separators
    "//evil.example",
    "//evil.example/ebevis/return",
    "///evil.example/ebevis/return",
    "////evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "https:portal.example/ebevis/return",
    "https:/portal.example/ebevis/return",
    "https:///portal.example/ebevis/return",
    "//portal.example/ebevis/return",
    "/ebevis/return",
    "ebevis/return",
    "portal.example/ebevis/return",
    # other hosts, userinfo "@"
    "https://evil.example",
    "https://evil.example/ebevis/return",
    "https://portal.example@evil.example/ebevis/return",
    "https://portal.example:443@evil.example/ebevis/return",
    "https://portal.example%40evil.example/ebevis/return",
    "https://evil.example@portal.example/ebevis/return",
    "https://user:pass@portal.example/ebevis/return",
    "https://@portal.example/ebevis/return",
    "https://portal.example@/ebevis/return",
    "https://portal.example\\@evil.example/ebevis/return",
    # backslashes
    "https:\\\\portal.example\\ebevis\\return",
    "https://portal.example\\ebevis\\return",
    "https:/\\evil.example",
    "https://portal.example\\.evil.example/ebevis/return",
    "https://evil.example\\portal.example/ebevis/return",
    # suffix, prefix and lookalike domains
    "https://portal.example.evil.example/ebevis/return",
    "https://portal.example.evil.example",
    "https://evilportal.example/ebevis/return",
    "https://evil-portal.example/ebevis/return",
    "https://portal.examplee/ebevis/return",
    "https://portal.exampl/ebevis/return",
    "https://portal.example./ebevis/return",
    "https://.portal.example/ebevis/return",
    "https://portal-example/ebevis/return",
    "https://xn--portal.example/ebevis/return",
    "https://pоrtal.example/ebevis/return",  # noqa: RUF001 - Cyrillic o, on purpose
    "https://portal\u3002example/ebevis/return",
    "https://portal\uff0eexample/ebevis/return",
    "https://portal.example\uff0febevis/return",
    # percent-encodings
    "https://portal%2eexample/ebevis/return",
    "https://portal.example%2f@evil.example",
    "https://portal.example%2F.evil.example/ebevis/return",
    "https://portal.example%00.evil.example/ebevis/return",
    "https://portal.example/ebevis%2freturn",
    "https://portal.example/ebevis%2Freturn",
    "https://portal.example/%65bevis/return",
    "https://portal.example/ebevis/%2e%2e/return",
    "https://portal.example/ebevis/return%0d%0aLocation:%20https://evil.example",
    "https://portal.example/ebevis/return%2f..%2f..%2fevil",
    # dot segments and path changes
    "https://portal.example/ebevis/../ebevis/return",
    "https://portal.example/ebevis/./return",
    "https://portal.example/ebevis/return/..",
    "https://portal.example/ebevis/return/",
    "https://portal.example//ebevis/return",
    "https://portal.example/ebevis/return;evil",
    "https://portal.example/EBEVIS/RETURN",
    "https://portal.example/ebevis/Return",
    # ports and schemes
    "https://portal.example:8443/ebevis/return",
    "https://portal.example:80/ebevis/return",
    "https://portal.example:0/ebevis/return",
    "https://portal.example:65536/ebevis/return",
    "https://portal.example:-443/ebevis/return",
    "https://portal.example:+443/ebevis/return",
    "https://portal.example:443:443/ebevis/return",
    "https://portal.example:0x1bb/ebevis/return",
    "https://portal.example:４４３/ebevis/return",  # noqa: RUF001 - full-width digits
    "http://portal.example/ebevis/return",
    "http://portal.example:443/ebevis/return",
    "HTTP://PORTAL.EXAMPLE/ebevis/return",
    "ftp://portal.example/ebevis/return",
    "wss://portal.example/ebevis/return",
    "https+evil://portal.example/ebevis/return",
    # whitespace and control characters
    " https://portal.example/ebevis/return",
    "https://portal.example/ebevis/return ",
    "\thttps://portal.example/ebevis/return",
    "https://portal.example/ebevis/return\t",
    "https://portal.example/ebevis/return\n",
    "https://portal.example/ebevis/return\r\nLocation: https://evil.example",
    "https://portal.example /ebevis/return",
    "https://portal.exa\nmple/ebevis/return",
    "https://portal.example/ebe\tvis/return",
    "https://portal.example/ebevis/return\x00",
    "https://portal.example/ebevis/return\x7f",
    "https://portal.example/ebevis/return\u2028",
    # fragments and queries
    "https://portal.example/ebevis/return#",
    "https://portal.example/ebevis/return#@evil.example",
    "https://portal.example#@evil.example/ebevis/return",
    "https://portal.example/ebevis/return#https://evil.example",
    "https://portal.example/ebevis/return?",
    "https://portal.example/ebevis/return?next=https://evil.example",
    "https://portal.example/ebevis/return?#",
    "https://portal.example?/ebevis/return",
    # script and data schemes
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "javascript://portal.example/ebevis/return%0aalert(1)",
    "javascript:https://portal.example/ebevis/return",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    # loopback and numeric hosts
    "https://127.0.0.1/ebevis/return",
    "https://[::1]/ebevis/return",
    "https://2130706433/ebevis/return",
    "https://0x7f.1/ebevis/return",
    "http://localhost/ebevis/return",
    # nothing at all
    "",
    "https://",
    "https:",
    "?",
    "#",
]
# Equal to PORTAL_RETURN under the documented rules (scheme and host case, default port).
ALLOWED_VARIANTS = [
    "HTTPS://PORTAL.EXAMPLE/ebevis/return",
    "https://Portal.Example/ebevis/return",
    "https://portal.example:443/ebevis/return",
    "Https://portal.EXAMPLE:443/ebevis/return",
]
# Malformed brackets, on which urlsplit itself raises: the matcher must refuse them calmly.
BRACKETS = [
    "https://[portal.example/ebevis/return",
    "https://portal.example]/ebevis/return",
    "https://[portal.example]/ebevis/return",
    "https://[evil.example]@portal.example/ebevis/return",
]

REFUSAL = [{"field": "return_url", "message": "must be one of the client's registered URLs"}]


def test_g7_the_corpus_is_refused_and_the_documented_variants_accepted_by_the_matcher() -> None:
    assert len(BYPASS_CORPUS) >= 100
    for candidate in BYPASS_CORPUS:
        assert matches_registered(candidate, (PORTAL_RETURN,)) is None, candidate
        assert documented_form(candidate) != documented_form(PORTAL_RETURN), candidate
    for candidate in ALLOWED_VARIANTS:
        assert matches_registered(candidate, (PORTAL_RETURN,)) == PORTAL_RETURN, candidate


def test_g7_fuzzed_targets_match_only_a_registered_url_under_the_documented_rules() -> None:
    seen: set[str] = set()
    accepted: set[str] = set()

    @settings(
        max_examples=1000,
        derandomize=True,
        database=None,
        deadline=timedelta(seconds=1),
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(CANDIDATES)
    def check(candidate: str) -> None:
        seen.add(candidate)
        got = matcher(candidate)
        assert got == expected_match(candidate), candidate
        if got is not None:
            accepted.add(candidate)
            assert got in REGISTERED_URLS  # the registered string itself, never the input

    check()
    assert len(seen) >= 500
    assert len(seen - accepted) >= 500  # at least 500 refused targets ...
    assert len(accepted) >= 20  # ... and the documented variants do get through


def test_g7_the_matcher_refuses_malformed_brackets_without_raising() -> None:
    for candidate in BRACKETS:
        assert matches_registered(candidate, (PORTAL_RETURN,)) is None, candidate
