"""Paper identifiers: what the user typed, told apart and normalised.

- arXiv ids, new style (``2104.12255``, ``2104.12255v1``) and old style
  (``astro-ph/0601001``, ``math.GT/0309136v2``), bare, with ``arXiv:`` or as
  ``arxiv.org/abs|pdf|html/...`` URLs; arXiv's own DOIs (``10.48550/arXiv.2104.12255``).
- DOIs, bare (``10.1038/srep16696``), with ``doi:`` or as ``doi.org`` URLs.
- A BibTeX entry (text starting with ``@``) or a file of them.
- Anything else of several words: a title.

Something that looks like an id but is not a valid one is an :class:`IdError` with a
message for the user, never a silent title.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NEW_STYLE = re.compile(r"(?P<id>\d{4}\.\d{4,5})(?:v(?P<version>\d+))?")
OLD_STYLE = re.compile(
    r"(?P<id>[a-z][a-z\-]*(?:\.[A-Za-z\-]{2,})?/\d{7})(?:v(?P<version>\d+))?")
DOI = re.compile(r"10\.\d{4,9}/\S+")
ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(?P<rest>.+)", re.IGNORECASE)
ARXIV_HOSTS = ("arxiv.org", "www.arxiv.org", "export.arxiv.org", "browse.arxiv.org")
DOI_HOSTS = ("doi.org", "dx.doi.org", "www.doi.org")
# Looks like an attempt at a new-style id (digits, a dot, digits): checked strictly.
_NEW_STYLE_ATTEMPT = re.compile(r"\d{3,}\.\d+(v\d*)?")


class IdError(ValueError):
    """What the user gave is not a valid identifier; the message says why."""


@dataclass(frozen=True, slots=True)
class ArxivId:
    id: str  # without version: 2104.12255, astro-ph/0601001
    version: int | None = None

    def __str__(self) -> str:
        return self.id if self.version is None else f"{self.id}v{self.version}"

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.id}"


@dataclass(frozen=True, slots=True)
class Source:
    """One thing to add: kind is arxiv, doi, bibtex (entry text), file or title."""

    kind: str
    value: str
    arxiv: ArxivId | None = None

    def __str__(self) -> str:
        if self.kind == "arxiv":
            return f"arXiv:{self.arxiv}"
        if self.kind == "doi":
            return f"doi:{self.value}"
        return self.value


def _version(match: re.Match[str]) -> int | None:
    version = match.group("version")
    return int(version) if version else None


def match_arxiv(text: str) -> ArxivId | None:
    """A bare id in either style (version optional), or None."""
    text = text.strip()
    for pattern in (NEW_STYLE, OLD_STYLE):
        match = pattern.fullmatch(text)
        if match is not None:
            return ArxivId(match.group("id"), _version(match))
    return None


def _arxiv_from_path(path: str) -> str | None:
    """The id part of an arxiv.org URL path: /abs/ID, /pdf/ID(.pdf), /html/ID, ..."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] not in ("abs", "pdf", "html", "format", "ps", "src"):
        return None
    rest = "/".join(parts[1:])
    return rest.removesuffix(".pdf")


def parse_arxiv(text: str) -> ArxivId | None:
    """An arXiv id from any of its forms; None when ``text`` is not trying to be one;
    IdError when it is, but is malformed."""
    raw = text.strip()
    candidate: str | None = None
    lower = raw.lower()
    if lower.startswith("arxiv:"):
        candidate = raw[6:].strip()
    elif lower.startswith(("http://", "https://")) or lower.startswith(
            tuple(h + "/" for h in ARXIV_HOSTS)):
        url = urllib.parse.urlsplit(raw if "://" in raw else "https://" + raw)
        if (url.hostname or "").lower() not in ARXIV_HOSTS:
            return None
        candidate = _arxiv_from_path(urllib.parse.unquote(url.path))
        if candidate is None:
            raise IdError(f"not an arXiv paper URL: {raw!r} (expected arxiv.org/abs/ID or "
                          "arxiv.org/pdf/ID)")
    else:
        doi = ARXIV_DOI.fullmatch(raw.removeprefix("doi:").strip())
        if doi is not None:
            candidate = doi.group("rest")
        elif match_arxiv(raw) is not None or _NEW_STYLE_ATTEMPT.fullmatch(raw):
            candidate = raw
    if candidate is None:
        return None
    found = match_arxiv(candidate)
    if found is None:
        raise IdError(f"malformed arXiv id {candidate!r}: expected YYMM.NNNNN (e.g. 2104.12255, "
                      "optionally with a version: 2104.12255v1) or archive/YYMMNNN "
                      "(e.g. astro-ph/0601001)")
    return found


def parse_doi(text: str) -> str | None:
    """A DOI from ``10.x/y``, ``doi:10.x/y`` or a doi.org URL; None when ``text`` is not
    trying to be one; IdError when it is, but is malformed."""
    raw = text.strip()
    lower = raw.lower()
    candidate: str | None = None
    if lower.startswith("doi:"):
        candidate = raw[4:].strip()
    elif lower.startswith(("http://", "https://")) or lower.startswith(
            tuple(h + "/" for h in DOI_HOSTS)):
        url = urllib.parse.urlsplit(raw if "://" in raw else "https://" + raw)
        if (url.hostname or "").lower() not in DOI_HOSTS:
            return None
        candidate = urllib.parse.unquote(url.path.lstrip("/"))
    elif lower.startswith("10."):
        candidate = raw
    if candidate is None:
        return None
    if not DOI.fullmatch(candidate):
        raise IdError(f"malformed DOI {candidate!r}: expected 10.PREFIX/SUFFIX "
                      "(e.g. 10.1038/srep16696)")
    return candidate


def doi_key(doi: str) -> str:
    """DOIs are case-insensitive: the form duplicates are compared in."""
    return doi.strip().lower()


def classify(text: str, *, is_file: Callable[[Path], bool] | None = None) -> Source:
    """What ``text`` is: an arXiv id, a DOI, BibTeX, a BibTeX file, or a title."""
    raw = text.strip()
    if not raw:
        raise IdError("nothing to add: empty text")
    if raw.startswith("@"):
        return Source("bibtex", raw)
    arxiv = parse_arxiv(raw)
    if arxiv is not None:
        return Source("arxiv", arxiv.id, arxiv)
    doi = parse_doi(raw)
    if doi is not None:
        own = ARXIV_DOI.fullmatch(doi)  # arXiv's DOI of its own paper (a doi.org URL)
        if own is not None:
            arxiv = parse_arxiv("arXiv:" + own.group("rest"))
            assert arxiv is not None
            return Source("arxiv", arxiv.id, arxiv)
        return Source("doi", doi)
    if raw.lower().startswith(("http://", "https://")):
        raise IdError(f"not an arXiv or DOI URL: {raw!r} (add such a paper by its DOI, "
                      "arXiv id or title)")
    check = is_file or (lambda p: p.is_file())
    path = Path(raw).expanduser()
    if "\n" not in raw and check(path):
        return Source("file", str(path))
    if raw.lower().endswith((".bib", ".bibtex")):
        raise IdError(f"no such file: {raw}")
    if len(raw.split()) >= 2:
        return Source("title", " ".join(raw.split()))
    raise IdError(f"not an arXiv id, DOI, URL or BibTeX file: {raw!r} (to add a paper by its "
                  "title, give a title of several words)")


def normalise_title(title: str) -> str:
    """Titles compared for duplicates: case, punctuation, spacing and braces ignored."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", title.lower()).split())


def classify_many(text: str, *, is_file: Callable[[Path], bool] | None = None) -> list[Source]:
    """One line that may hold several ids ("2104.12255 10.1038/srep16696") or one title
    ("Attention is all you need"): ids when most of its words are valid ids (then an
    invalid one is an error), else the whole line as :func:`classify` sees it."""
    raw = text.strip()
    tokens = raw.split()
    if len(tokens) > 1 and not raw.startswith("@"):
        sources: list[Source] = []
        errors: list[IdError] = []
        for token in tokens:
            try:
                sources.append(classify(token, is_file=is_file))
            except IdError as exc:
                errors.append(exc)
        if not errors:
            return sources
        if len(sources) >= len(errors):
            raise errors[0]
    return [classify(raw, is_file=is_file)]
