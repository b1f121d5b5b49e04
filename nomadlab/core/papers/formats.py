"""Paper metadata in and out: arXiv Atom, Crossref JSON, BibTeX, Markdown. Pure functions.

Parsing never trusts the text it reads: titles and abstracts keep their TeX and any
markup-like brackets exactly as sent (the UI shows them as text), whitespace is
normalised, and a feed that is not what it should be raises :class:`FeedError`.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nomadlab.core.papers.ids import ArxivId, IdError, match_arxiv, parse_arxiv, parse_doi

if TYPE_CHECKING:
    from nomadlab.core.papers.model import Paper

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


class FeedError(ValueError):
    """A response that is not the document it should be."""


@dataclass(slots=True)
class PaperMeta:
    """What a service or a BibTeX entry says about a paper (no reading state)."""

    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str | None = None  # journal ref / container title / booktitle
    abstract: str | None = None
    arxiv_id: str | None = None  # without version
    arxiv_version: int | None = None
    doi: str | None = None
    url: str | None = None  # the abstract page
    pdf_url: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    entry_type: str | None = None  # BibTeX type: article, inproceedings, misc, ...
    bibtex_key: str | None = None

    @property
    def has_ids(self) -> bool:
        return bool(self.arxiv_id or self.doi)


def clean_space(text: str | None) -> str:
    return " ".join((text or "").split())


# ---------------------------------------------------------------------------- arXiv


@dataclass(slots=True)
class ArxivFeed:
    entries: list[PaperMeta]
    total: int | None
    errors: list[str]  # the summaries of error entries ("incorrect id format for abc")


def _text(node: ET.Element | None) -> str:
    return "" if node is None or node.text is None else node.text


def _https(url: str) -> str:
    return re.sub(r"^http://(arxiv\.org|dx\.doi\.org|doi\.org)/", r"https://\1/", url)


def parse_arxiv_feed(data: bytes | str) -> ArxivFeed:
    """An arXiv API answer (Atom), either output format: the current one and the older
    one that declares namespaces per element (ElementTree resolves both the same way)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FeedError(f"arXiv answered something that is not XML ({exc})") from None
    if root.tag != ATOM + "feed":
        raise FeedError(f"arXiv answered XML that is not an Atom feed (<{root.tag}>)")
    total_text = _text(root.find(OPENSEARCH + "totalResults")).strip()
    total = int(total_text) if total_text.isdigit() else None
    entries: list[PaperMeta] = []
    errors: list[str] = []
    for entry in root.findall(ATOM + "entry"):
        entry_id = _text(entry.find(ATOM + "id")).strip()
        if "/api/errors" in entry_id:
            errors.append(clean_space(_text(entry.find(ATOM + "summary")))
                          or entry_id.rpartition("#")[2].replace("_", " "))
            continue
        entries.append(_arxiv_entry(entry, entry_id))
    return ArxivFeed(entries, total, errors)


def _arxiv_entry(entry: ET.Element, entry_id: str) -> PaperMeta:
    raw_id = re.sub(r"^https?://(export\.|www\.)?arxiv\.org/abs/", "", entry_id)
    arxiv = match_arxiv(raw_id)
    if arxiv is None:
        raise FeedError(f"arXiv answered an entry with an unexpected id {entry_id!r}")
    categories: list[str] = []
    primary = entry.find(ARXIV + "primary_category")
    if primary is not None and primary.get("term"):
        categories.append(primary.get("term", ""))
    for node in entry.findall(ATOM + "category"):
        term = node.get("term")
        if term and term not in categories:
            categories.append(term)
    pdf_url = None
    for link in entry.findall(ATOM + "link"):
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = _https(link.get("href", "")) or None
            break
    published = _text(entry.find(ATOM + "published")).strip()
    year = int(published[:4]) if published[:4].isdigit() else None
    doi = clean_space(_text(entry.find(ARXIV + "doi"))) or None
    journal = clean_space(_text(entry.find(ARXIV + "journal_ref"))) or None
    authors = [clean_space(_text(a.find(ATOM + "name"))) for a in entry.findall(ATOM + "author")]
    return PaperMeta(
        title=clean_space(_text(entry.find(ATOM + "title"))),
        authors=[a for a in authors if a],
        year=year,
        venue=journal,
        abstract=clean_space(_text(entry.find(ATOM + "summary"))) or None,
        arxiv_id=arxiv.id,
        arxiv_version=arxiv.version,
        doi=doi,
        url=ArxivId(arxiv.id).abs_url,
        # Versionless links: the latest version, as arxiv.org itself links them.
        pdf_url=ArxivId(arxiv.id).pdf_url if pdf_url is not None else None,
        categories=categories,
        entry_type="article" if journal else "misc",
    )


# ---------------------------------------------------------------------------- Crossref

CROSSREF_TYPES = {
    "journal-article": "article",
    "proceedings-article": "inproceedings",
    "book-chapter": "incollection",
    "book": "book",
    "monograph": "book",
    "dissertation": "phdthesis",
    "report": "techreport",
    "posted-content": "misc",
}
_TAG = re.compile(r"<[^>]*>")
_JATS_TITLE = re.compile(r"<jats:title>\s*Abstract\s*</jats:title>", re.IGNORECASE)


def strip_jats(text: str) -> str:
    """Crossref abstracts are JATS XML: keep the words, drop the tags."""
    text = _JATS_TITLE.sub(" ", text)
    text = re.sub(r"</jats:p>\s*", "\n", text)
    text = _TAG.sub("", text)
    return "\n".join(clean_space(html.unescape(p)) for p in text.split("\n") if p.strip())


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return clean_space(value) or None if isinstance(value, str) else None


def _year(message: dict[str, Any]) -> int | None:
    for key in ("published-print", "published-online", "issued", "published", "created"):
        parts = (message.get(key) or {}).get("date-parts") or [[None]]
        if parts and parts[0] and isinstance(parts[0][0], int):
            return int(parts[0][0])
    return None


def parse_crossref_work(data: bytes | str) -> PaperMeta:
    """The ``message`` of a Crossref ``/works/{doi}`` answer."""
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise FeedError(f"Crossref answered something that is not JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("status") != "ok" \
            or not isinstance(obj.get("message"), dict):
        raise FeedError("Crossref answered JSON that is not a work")
    m: dict[str, Any] = obj["message"]
    title = _first(m.get("title")) or ""
    subtitle = _first(m.get("subtitle"))
    if subtitle and subtitle.lower() not in title.lower():
        title = f"{title}: {subtitle}"
    authors = []
    for person in m.get("author") or []:
        if not isinstance(person, dict):
            continue
        name = " ".join(p for p in (person.get("given"), person.get("family"))
                        if isinstance(p, str) and p.strip()) or person.get("name")
        if isinstance(name, str) and name.strip():
            authors.append(clean_space(name))
    pdf_url = None
    for link in m.get("link") or []:
        if isinstance(link, dict) and link.get("content-type") == "application/pdf":
            pdf_url = link.get("URL")
            break
    abstract = m.get("abstract")
    doi = m.get("DOI") if isinstance(m.get("DOI"), str) else None
    url = m.get("URL") if isinstance(m.get("URL"), str) else None
    subjects = [s for s in m.get("subject") or [] if isinstance(s, str)]
    return PaperMeta(
        title=title,
        authors=authors,
        year=_year(m),
        venue=_first(m.get("container-title")) or _first(m.get("short-container-title")),
        abstract=strip_jats(abstract) if isinstance(abstract, str) and abstract.strip() else None,
        doi=doi,
        url=_https(url) if url else (f"https://doi.org/{doi}" if doi else None),
        pdf_url=pdf_url if isinstance(pdf_url, str) else None,
        categories=subjects,
        entry_type=CROSSREF_TYPES.get(str(m.get("type")), "misc"),
    )


# ---------------------------------------------------------------------------- BibTeX

_PROTECTING_BRACES = re.compile(r"(?<!\\)\{([^{}\\$]*)\}")


def unbrace(value: str) -> str:
    """Drop BibTeX's protecting braces ({BERT} -> BERT); keep TeX commands and math."""
    previous = None
    while previous != value:
        previous, value = value, _PROTECTING_BRACES.sub(r"\1", value)
    return clean_space(value)


def split_authors(value: str) -> list[str]:
    """'Doe, Jane and Roe, R.' -> ['Jane Doe', 'R. Roe'] (top-level 'and' only)."""
    names: list[str] = []
    depth = 0
    current = ""
    tokens = re.split(r"(\s+and\s+|[{}])", value)
    for token in tokens:
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        if depth == 0 and re.fullmatch(r"\s+and\s+", token or ""):
            names.append(current)
            current = ""
        else:
            current += token or ""
    names.append(current)
    out = []
    for raw in names:
        name = unbrace(raw)
        if not name or name.lower() == "others":
            continue
        if "," in name:
            last, _, first = name.partition(",")
            name = clean_space(f"{first.strip()} {last.strip()}")
        out.append(name)
    return out


@contextlib.contextmanager
def _quiet_bibtexparser() -> Iterator[None]:
    """bibtexparser logs each block it cannot parse; we report them ourselves."""
    logger = logging.getLogger("bibtexparser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(slots=True)
class BibtexImport:
    entries: list[PaperMeta]
    problems: list[str]  # entries that were skipped, and why


def parse_bibtex(text: str) -> BibtexImport:
    """Every entry of a BibTeX text (bibtexparser 2), as PaperMeta."""
    import bibtexparser

    with _quiet_bibtexparser():
        library = bibtexparser.parse_string(text)  # type: ignore[attr-defined]
    problems = []
    for block in library.failed_blocks:
        line = getattr(block, "start_line", None)
        where = f" at line {line + 1}" if isinstance(line, int) else ""
        problems.append(f"unreadable BibTeX{where}: {getattr(block, 'error', 'syntax error')}")
    entries: list[PaperMeta] = []
    for entry in library.entries:
        fields = {f.key.lower(): str(f.value) for f in entry.fields}
        try:
            meta = _bibtex_meta(entry.entry_type.lower(), entry.key, fields)
        except IdError as exc:
            problems.append(f"@{entry.entry_type}{{{entry.key}}}: {exc}")
            continue
        if not meta.title and not meta.has_ids:
            problems.append(f"@{entry.entry_type}{{{entry.key}}}: no title, DOI or arXiv id")
            continue
        entries.append(meta)
    return BibtexImport(entries, problems)


def _bibtex_meta(entry_type: str, key: str, f: dict[str, str]) -> PaperMeta:
    arxiv: ArxivId | None = None
    eprint = f.get("eprint", "").strip()
    prefix = (f.get("archiveprefix") or f.get("eprinttype") or "").strip().lower()
    if eprint and (prefix in ("arxiv", "") and (parse_arxiv(eprint) is not None)):
        arxiv = parse_arxiv(eprint)
    url = f.get("url", "").strip() or None
    if arxiv is None and url:
        with contextlib.suppress(IdError):
            arxiv = parse_arxiv(url)
    doi = None
    if f.get("doi", "").strip():
        raw = f["doi"].strip()
        with contextlib.suppress(IdError):
            arxiv = arxiv or parse_arxiv(raw)
        doi = parse_doi(raw if raw.lower().startswith(("10.", "doi:", "http")) else "doi:" + raw)
        if doi is not None and doi.lower().startswith("10.48550/arxiv."):
            doi = None  # arXiv's own DOI: the arXiv id says it
    year_match = re.search(r"\d{4}", f.get("year", "") or f.get("date", ""))
    venue = f.get("journal") or f.get("journaltitle") or f.get("booktitle") \
        or f.get("howpublished") or None
    tags = [t for t in (clean_space(x) for x in re.split(r"[,;]", f.get("keywords", ""))) if t]
    categories = [c for c in [f.get("primaryclass", "").strip()] if c]
    return PaperMeta(
        title=unbrace(f.get("title", "")),
        authors=split_authors(f.get("author", "")),
        year=int(year_match.group()) if year_match else None,
        venue=unbrace(venue) if venue else None,
        abstract=clean_space(f.get("abstract")) or None,
        arxiv_id=arxiv.id if arxiv else None,
        arxiv_version=arxiv.version if arxiv else None,
        doi=doi,
        url=url if url and not (arxiv and "arxiv.org" in url) else (arxiv.abs_url if arxiv
                                                                     else None),
        pdf_url=arxiv.pdf_url if arxiv else None,
        categories=categories,
        tags=tags,
        entry_type=entry_type,
        bibtex_key=key,
    )


def balance_braces(value: str) -> str:
    """A value BibTeX can hold: unbalanced braces dropped, no trailing backslash."""
    out: list[str] = []
    depth = 0
    opened: list[int] = []
    for ch in value:
        if ch == "{":
            depth += 1
            opened.append(len(out))
            out.append(ch)
        elif ch == "}":
            if depth == 0:
                continue
            depth -= 1
            opened.pop()
            out.append(ch)
        else:
            out.append(ch)
    for index in reversed(opened):
        del out[index]
    text = "".join(out).replace("\n", " ").replace("\r", " ")
    return text.rstrip("\\")


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


STOP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "is", "are"}


def citation_key(paper: Paper) -> str:
    """lastnameYEARfirstword, e.g. nguyen2021zero."""
    last = _ascii_word(paper.authors[0].split()[-1]) if paper.authors else ""
    words = [_ascii_word(w) for w in paper.title.split()]
    first = next((w for w in words if w and w not in STOP_WORDS), "") if words else ""
    key = f"{last}{paper.year or ''}{first}"
    return key or f"paper{paper.id}"


def _entry_type(paper: Paper) -> str:
    if paper.entry_type:
        return paper.entry_type
    if paper.venue and not paper.arxiv_id:
        return "article"
    return "misc"


def to_bibtex(papers: Sequence[Paper]) -> str:
    """One BibTeX entry per paper; valid: it reads back with bibtexparser."""
    import bibtexparser
    from bibtexparser.library import Library
    from bibtexparser.model import Entry, Field

    library = Library()
    used: set[str] = set()
    for paper in papers:
        base = re.sub(r"[^A-Za-z0-9_:\-.]", "", paper.bibtex_key or "") or citation_key(paper)
        key = base
        suffix = iter("bcdefghijklmnopqrstuvwxyz")
        while key in used:
            key = base + next(suffix, str(paper.id))
        used.add(key)
        kind = _entry_type(paper)
        fields: list[tuple[str, str]] = [("title", paper.title or paper.label)]
        if paper.authors:
            fields.append(("author", " and ".join(paper.authors)))
        if paper.year:
            fields.append(("year", str(paper.year)))
        if paper.venue:
            venue_field = {"article": "journal", "inproceedings": "booktitle",
                           "incollection": "booktitle"}.get(kind, "howpublished")
            fields.append((venue_field, paper.venue))
        if paper.doi:
            fields.append(("doi", paper.doi))
        if paper.arxiv_id:
            fields.append(("eprint", paper.arxiv_id))
            fields.append(("archivePrefix", "arXiv"))
            if paper.categories:
                fields.append(("primaryClass", paper.categories[0]))
        url = paper.url or (ArxivId(paper.arxiv_id).abs_url if paper.arxiv_id else None)
        if url:
            fields.append(("url", url))
        if paper.abstract:
            fields.append(("abstract", paper.abstract))
        if paper.tags:
            fields.append(("keywords", ", ".join(paper.tags)))
        library.add(Entry(kind, key, [Field(k, balance_braces(v)) for k, v in fields if v]))
    return str(bibtexparser.write_string(library))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_line(paper: Paper) -> str:
    link = paper.url or (ArxivId(paper.arxiv_id).abs_url if paper.arxiv_id
                         else f"https://doi.org/{paper.doi}" if paper.doi else None)
    title = md_escape(paper.title or paper.label)
    head = f"[{title}](<{link}>)" if link else title
    who = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    bits = [b for b in (md_escape(who), str(paper.year) if paper.year else "",
                        md_escape(paper.venue or "")) if b]
    return f"- **{head}**" + (f" — {'; '.join(bits)}" if bits else "")


def _day(t: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t)) if t else ""


def to_markdown(papers: Sequence[Paper], now: float) -> str:
    """A reading list: read papers with their takeaways, then reading, then queued."""
    lines = ["# Reading list", "", f"_Exported {_day(now)} by nomadlab._", ""]
    groups = (("read", "Read"), ("reading", "Reading"), ("queued", "Queue"),
              ("dropped", "Dropped"))
    for status, heading in groups:
        group = [p for p in papers if p.status == status]
        if not group:
            continue
        lines += [f"## {heading}", ""]
        for paper in group:
            line = _md_line(paper)
            if status == "read" and paper.finished:
                line += f" (read {_day(paper.finished)}"
                line += f", {'★' * paper.rating}" if paper.rating else ""
                line += ")"
            lines.append(line)
            if paper.takeaway:
                lines.append(f"  - Takeaway: {md_escape(paper.takeaway)}")
        lines.append("")
    if len(lines) == 4:
        lines += ["Nothing here yet.", ""]
    return "\n".join(lines)
