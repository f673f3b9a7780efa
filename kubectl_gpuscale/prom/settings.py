"""Where gpuscale finds Prometheus: ``--prometheus URL`` > ``$GPUSCALE_PROMETHEUS_URL`` > install config,
and which credentials go with it.

Credentials never travel with the URL string: a ``user:password@`` in a URL is split off into
`BasicAuth` (the URL kept everywhere else has no userinfo, and `redact` hides userinfo in any
text), and ``$GPUSCALE_PROMETHEUS_TOKEN`` is attached only to a URL given in this invocation
(the flag or ``$GPUSCALE_PROMETHEUS_URL``), never to one read from the cluster: whoever can edit
a ConfigMap must not be able to collect the user's token.

Pure: no network, no heavy import. The install config itself is read by its owner
(``kubectl_gpuscale.config``); callers pass its URL in as ``configured``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from kubectl_gpuscale.errors import InputError

ENV_URL = "GPUSCALE_PROMETHEUS_URL"
ENV_TOKEN = "GPUSCALE_PROMETHEUS_TOKEN"
DEFAULT_TIMEOUT = 10.0
FLAG_SOURCE = "--prometheus"
ENV_SOURCE = f"${ENV_URL}"
GIVEN_SOURCES = (FLAG_SOURCE, ENV_SOURCE)
"""Sources of a URL the user gave in this invocation: the only ones a token from the environment goes to."""
REDACTED = "***"

_TOKEN = re.compile(r"\S+")
_SCHEME_RUN = re.compile(r"(?i)[a-z0-9+.\-]+")  # a URL scheme's characters (RFC 3986)
_SCHEME_START = re.compile(r"(?i)\b[a-z]")


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic credentials taken out of a URL's userinfo (the password never shows in a repr)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class PrometheusURL:
    """A Prometheus base URL (never with userinfo), where it came from, and the credentials that go to it."""

    url: str
    source: str
    basic_auth: BasicAuth | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_withheld: bool = False
    """A token is set in the environment but was not attached: the URL was not given in this invocation."""

    @property
    def given(self) -> bool:
        """Whether the user gave this URL in this invocation (flag or environment)."""
        return self.source in GIVEN_SOURCES

    def withheld_note(self) -> str:
        """Why the token was not sent (empty when it was, or when none is set)."""
        if not self.token_withheld:
            return ""
        return (
            f"${ENV_TOKEN} not sent to {self.url} ({self.source}): a token goes only to a URL given with "
            f"--prometheus or ${ENV_URL}"
        )


def redact(text: str) -> str:
    """`text` with the userinfo (``user:password@``) of every URL in it replaced by ``***@``.

    The userinfo runs from ``scheme://`` to the last '@' of the text's whitespace-delimited token, so
    a raw '@' or '/' in a password is covered too. This is what
    ``re.sub(r"(?i)\\b([a-z][a-z0-9+.\\-]*://)\\S*@", r"\\1***@", text)`` returns, read in linear time:
    that sub reads to the token's end again from every scheme-like start, quadratic on forged text
    (an exception message, a URL in a ConfigMap).
    """
    if "://" not in text:
        return text
    out, done = [], 0
    for token in _TOKEN.finditer(text):
        at = text.rfind("@", token.start(), token.end())
        if at < 0:
            continue
        for run in _SCHEME_RUN.finditer(text, token.start(), at):
            end = run.end()
            if text.startswith("://", end) and end + 3 <= at:
                start = _SCHEME_START.search(text, run.start(), end)
                if start is not None:
                    out += [text[done : start.start()], text[start.start() : end + 3], REDACTED, "@"]
                    done = at + 1
                    break
    return "".join(out) + text[done:]


def split_userinfo(url: str) -> tuple[str, BasicAuth | None]:
    """The http(s) base URL without userinfo or trailing slash, and the credentials it carried.

    Raises:
        InputError: not an http(s) URL with a host, a query or fragment, or an unencoded '@' or '/'
            in the credentials; the message shows the URL redacted.
    """
    text = url.strip()
    parts = urlsplit(text)
    shown = redact(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"invalid Prometheus URL {shown!r}",
            "it must be an http:// or https:// URL with a host",
            "pass e.g. --prometheus http://prometheus-operated.monitoring.svc:9090",
        )
    if parts.query or parts.fragment:
        raise InputError(
            f"invalid Prometheus URL {shown!r}",
            "it must not carry a query or a fragment",
            "pass the base URL, e.g. http://prometheus:9090 (a path prefix is fine)",
        )
    if "@" in parts.path:
        raise InputError(
            f"invalid Prometheus URL {shown!r}",
            "an '@' after the host part",
            "percent-encode the user name and password ('/' is %2F, '@' is %40)",
        )
    auth = None
    netloc = parts.netloc
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
        auth = BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/"), auth


def normalize_url(url: str) -> str:
    """The base URL without userinfo or trailing slash; InputError unless it is an http(s) URL with a host."""
    return split_userinfo(url)[0]


def resolve_url(
    flag: str | None = None,
    *,
    configured: str | None = None,
    configured_source: str | None = None,
    env: Mapping[str, str] | None = None,
) -> PrometheusURL:
    """The Prometheus URL to use and its credentials: the flag, else ``$GPUSCALE_PROMETHEUS_URL``, else
    `configured` (the install config, described by `configured_source`).

    Basic credentials come from the chosen URL's own userinfo; the bearer token from
    ``$GPUSCALE_PROMETHEUS_TOKEN`` only when the URL is the flag or the environment's.

    Raises:
        InputError: none is set, or the chosen one is not an http(s) URL.
    """
    environ = os.environ if env is None else env
    token = resolve_token(env=environ)
    for value, source in (
        (flag, FLAG_SOURCE),
        (environ.get(ENV_URL), ENV_SOURCE),
        (configured, configured_source or "the install config"),
    ):
        if value:
            url, auth = split_userinfo(value)
            given = source in GIVEN_SOURCES
            return PrometheusURL(
                url, source, auth, token if given else None, token_withheld=bool(token) and not given
            )
    raise InputError(
        "no Prometheus URL",
        f"neither --prometheus, ${ENV_URL} nor the install config sets one",
        "pass --prometheus http://HOST:9090 (or kubectl port-forward to your Prometheus)",
    )


def resolve_token(flag: str | None = None, *, env: Mapping[str, str] | None = None) -> str | None:
    """The bearer token: the flag, else ``$GPUSCALE_PROMETHEUS_TOKEN``, else none."""
    environ = os.environ if env is None else env
    return flag or environ.get(ENV_TOKEN) or None
