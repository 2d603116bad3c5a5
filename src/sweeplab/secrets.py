"""Hide the password of every URL in a text before it reaches MLflow, output, logs or an error."""

from __future__ import annotations

import functools
import re

# scheme://... up to whitespace, a quote or a backslash (the end of a shell word or a JSON string),
# or up to the next scheme:// (two URLs with no space between them).
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_CANDIDATE = re.compile(rf"{_SCHEME}(?:(?!{_SCHEME})[^\s'\"`<>\\])+")
# Sentence punctuation right after a URL is not part of it.
_TRAILING = ".,;:!?)]}"
# What ends a URL's host, or SQLAlchemy's reading of a password, when raw in a password.
_RESERVED = re.compile(r"[@/?#]")


def hide_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host...` in it shown as `***`.

    Each URL is rendered by SQLAlchemy (`make_url(url).render_as_string(hide_password=True)`);
    one it cannot parse is masked all the same. A raw `@`, `/`, `?` or `#` in a password is
    understood (the host follows the last `@`); whitespace or quotes in one must be
    percent-encoded, as in any URL. Text without a password comes back unchanged.
    """
    if "@" not in text or "://" not in text:
        return text
    return _CANDIDATE.sub(_masked_match, text)


def _masked_match(match: re.Match) -> str:
    candidate = match.group(0)
    url = candidate.rstrip(_TRAILING)
    return _masked(url) + candidate[len(url):]


@functools.lru_cache(maxsize=256)
def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    found = _credentials(rest)
    if found is None:
        return url
    user, password, after = found
    # SQLAlchemy ends a password at its first "@" (and the host at "/", "?", "#"): encode those.
    parsable = f"{scheme}://{user}:{_RESERVED.sub(lambda m: f'%{ord(m.group(0)):02X}', password)}@{after}"
    try:
        from sqlalchemy.engine import make_url

        rendered = make_url(parsable).render_as_string(hide_password=True)
    except Exception:  # never leak on a parse failure
        rendered = ""
    if ":***@" not in rendered:
        rendered = f"{scheme}://{user}:***@{after}"
    return rendered



def _credentials(rest: str) -> tuple[str, str, str] | None:
    """(user, password, host and the rest) of what follows `scheme://`; None without a password."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if "@" in rest[:end]:
        userinfo, _, host = rest[:end].rpartition("@")  # a raw "@" in the password: the host follows the last
        user, colon, password = userinfo.partition(":")
        return (user, password, host + rest[end:]) if colon else None
    # A raw "/", "?" or "#" in the password ends the authority early; the host follows the last "@".
    userinfo, at, after = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon or _RESERVED.search(user) or re.match(r"\d*[/?#]", password):
        return None  # no credentials, or `host:port/path@...`
    return user, password, after
