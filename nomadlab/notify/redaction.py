"""Secrets kept out of failure texts: every form a webhook URL or token may take in an
error message, replaced by ``<secret>``."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable


def _encodings(piece: str) -> set[str]:
    """``piece`` as it may appear in an error text: raw, percent-encoded (path or form
    style, "/" kept or not) and decoded."""
    return {piece, urllib.parse.quote(piece), urllib.parse.quote(piece, safe=""),
            urllib.parse.quote_plus(piece), urllib.parse.quote(piece, safe="/:?=&"),
            urllib.parse.unquote(piece), urllib.parse.unquote_plus(piece)}


def secret_forms(secret: str) -> list[str]:
    """Every text that would give the secret (or the part of it that is secret) away,
    longest first: the value, and for a URL its path, query, credentials and token-like
    path segments, each in its URL-encoded and decoded forms. A server that echoes the
    request's path in its error body, or a URL with a space that Python quotes in its
    error message, then gives nothing away."""
    pieces = {secret, secret.strip()}
    value = secret.strip()
    parts = urllib.parse.urlsplit(value)
    if parts.scheme and parts.netloc:
        pieces.update(p for p in (parts.path, parts.query, parts.fragment, parts.password,
                                  parts.path + ("?" + parts.query if parts.query else ""))
                      if p and p != "/")
        for segment in [*parts.path.split("/"), *parts.query.replace("&", "=").split("=")]:
            if len(segment) >= 16 or (len(segment) >= 8 and any(c.isdigit() for c in segment)):
                pieces.add(segment)
    forms: set[str] = set()
    for piece in pieces:
        forms.update(_encodings(piece))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Every form of every secret (see :func:`secret_forms`) replaced by <secret>."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update(secret_forms(secret))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "<secret>")
    return text


