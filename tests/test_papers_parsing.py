"""Pure parsing: every id form, both arXiv Atom formats, the error feed and the empty
result, Crossref works, BibTeX in and out (round trip), the Markdown reading list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bibtexparser
import pytest
from test_papers_support import ARXIV, CROSSREF, HOSTILE_ABSTRACT, HOSTILE_TITLE

from nomadlab.core.papers import Paper
from nomadlab.core.papers.formats import (
    FeedError,
    balance_braces,
    parse_arxiv_feed,
    parse_bibtex,
    parse_crossref_work,
    split_authors,
    strip_jats,
    to_bibtex,
    to_markdown,
    unbrace,
)
from nomadlab.core.papers.ids import (
    ArxivId,
    IdError,
    classify,
    classify_many,
    normalise_title,
    parse_arxiv,
    parse_doi,
)

# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(("text", "arxiv_id", "version"), [
    ("2104.12255", "2104.12255", None),
    ("2104.12255v1", "2104.12255", 1),
    ("  2104.12255v12 ", "2104.12255", 12),
    ("0808.0539", "0808.0539", None),  # 4-digit numbers before 2015
    ("arXiv:2104.12255", "2104.12255", None),
    ("arxiv:2104.12255v2", "2104.12255", 2),
    ("astro-ph/0601001", "astro-ph/0601001", None),
    ("astro-ph/0601001v1", "astro-ph/0601001", 1),
    ("math.GT/0309136", "math.GT/0309136", None),
    ("cond-mat/0211034v3", "cond-mat/0211034", 3),
    ("https://arxiv.org/abs/2104.12255", "2104.12255", None),
    ("https://arxiv.org/abs/2104.12255v1", "2104.12255", 1),
    ("http://arxiv.org/abs/astro-ph/0601001v1", "astro-ph/0601001", 1),
    ("https://arxiv.org/pdf/2104.12255v1", "2104.12255", 1),
    ("https://arxiv.org/pdf/2104.12255v1.pdf", "2104.12255", 1),
    ("https://arxiv.org/pdf/astro-ph/0601001.pdf", "astro-ph/0601001", None),
    ("https://export.arxiv.org/abs/1111.2011v2", "1111.2011", 2),
    ("https://www.arxiv.org/html/2104.12255v1", "2104.12255", 1),
    ("arxiv.org/abs/2104.12255", "2104.12255", None),
    ("10.48550/arXiv.2104.12255", "2104.12255", None),
    ("https://doi.org/10.48550/arXiv.2104.12255", "2104.12255", None),
])
def test_arxiv_id_forms(text: str, arxiv_id: str, version: int | None) -> None:
    source = classify(text)
    assert source.kind == "arxiv"
    assert source.arxiv == ArxivId(arxiv_id, version)
    assert source.value == arxiv_id  # duplicates are compared without the version


@pytest.mark.parametrize(("text", "doi"), [
    ("10.1038/srep16696", "10.1038/srep16696"),
    ("doi:10.1038/srep16696", "10.1038/srep16696"),
    ("DOI: 10.1103/PhysRevB.85.115117", "10.1103/PhysRevB.85.115117"),
    ("https://doi.org/10.1371/journal.pone.0033693", "10.1371/journal.pone.0033693"),
    ("http://dx.doi.org/10.1103/PhysRevB.85.115117", "10.1103/PhysRevB.85.115117"),
    ("https://doi.org/10.1002/%28SICI%291097-4547", "10.1002/(SICI)1097-4547"),
    ("doi.org/10.3892/ijo_00000353", "10.3892/ijo_00000353"),
])
def test_doi_forms(text: str, doi: str) -> None:
    source = classify(text)
    assert (source.kind, source.value) == ("doi", doi)


@pytest.mark.parametrize(("text", "message"), [
    ("2104.122", "malformed arXiv id '2104.122'"),
    ("2104.123456", "malformed arXiv id"),
    ("arXiv:abc", "malformed arXiv id 'abc'"),
    ("arxiv:2104", "malformed arXiv id '2104'"),
    ("https://arxiv.org/abs/", "not an arXiv paper URL"),
    ("https://arxiv.org/abs/foo", "malformed arXiv id 'foo'"),
    ("https://arxiv.org/list/cs.LG/recent", "not an arXiv paper URL"),
    ("doi:foo", "malformed DOI 'foo'"),
    ("10.12/x", "malformed DOI '10.12/x'"),
    ("https://doi.org/", "malformed DOI"),
    ("https://example.com/paper.pdf", "not an arXiv or DOI URL"),
    ("abc", "not an arXiv id, DOI, URL or BibTeX file: 'abc'"),
    ("refs.bib", "no such file: refs.bib"),
    ("   ", "nothing to add"),
])
def test_malformed_ids_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(IdError, match=None) as info:
        classify(text)
    assert message in str(info.value)


def test_titles_files_and_bibtex_text(tmp_path: Path) -> None:
    assert classify("Attention is all you need").kind == "title"
    assert classify("  Attention   is all\tyou need ").value == "Attention is all you need"
    bib = tmp_path / "refs.bib"
    bib.write_text("@misc{x, title={T}}")
    assert (classify(str(bib)).kind, classify(str(bib)).value) == ("file", str(bib))
    assert classify("@article{k, title={A}}").kind == "bibtex"


def test_several_ids_on_one_line_or_a_title() -> None:
    sources = classify_many("2104.12255 10.1038/srep16696 astro-ph/0601001v1")
    assert [s.kind for s in sources] == ["arxiv", "doi", "arxiv"]
    assert [s.kind for s in classify_many("Deep residual learning for images")] == ["title"]
    assert [s.kind for s in classify_many("2104.12255 revisited at last")] == ["title"]
    with pytest.raises(IdError, match=r"malformed arXiv id '2104\.1'"):
        classify_many("2104.12255 2104.1")


def test_parse_functions_say_none_for_other_things() -> None:
    assert parse_arxiv("10.1038/srep16696") is None
    assert parse_arxiv("Attention is all you need") is None
    assert parse_doi("2104.12255") is None
    assert parse_doi("https://arxiv.org/abs/2104.12255") is None
    assert normalise_title("The {BERT} model: a $\\sigma$-Study!") == \
        normalise_title("the BERT Model — A sigma study")


# --------------------------------------------------------------------------- arXiv Atom


def feed(name: str) -> bytes:
    return (ARXIV / name).read_bytes()


def test_current_atom_format() -> None:
    parsed = parse_arxiv_feed(feed("idlist_2104.12255v1.xml"))
    assert parsed.total == 1 and parsed.errors == []
    (meta,) = parsed.entries
    assert meta.title == "0"  # a real title that is falsy-looking
    assert meta.authors == ["Quan Thoi Minh Nguyen"]
    assert (meta.arxiv_id, meta.arxiv_version, meta.year) == ("2104.12255", 1, 2021)
    assert meta.categories == ["cs.CR"]
    assert meta.url == "https://arxiv.org/abs/2104.12255"
    assert meta.pdf_url == "https://arxiv.org/pdf/2104.12255"
    assert meta.abstract is not None and "$35,000" in meta.abstract
    assert meta.doi is None and meta.venue is None


def test_old_style_id_feed() -> None:
    (meta,) = parse_arxiv_feed(feed("idlist_astro-ph_0601001.xml")).entries
    assert meta.arxiv_id == "astro-ph/0601001" and meta.arxiv_version == 1
    assert meta.title.startswith("Frequency of Hot Jupiters")
    assert meta.authors == ["Andrew Gould", "Susan Dorsher", "B. Scott Gaudi",
                            "Andrzej Udalski"]  # affiliations are not names
    assert meta.venue == "ActaAstron.56:1-50,2006"
    assert meta.abstract is not None
    assert meta.abstract.startswith("We derive")  # leading spaces gone
    assert "Gould & Morgan (2003)" in meta.abstract and "V_max<17.5" in meta.abstract
    assert "(1/310)(1^{+1.39}_{-0.59})" in meta.abstract  # TeX kept as it is


def test_older_atom_format_with_namespaces_per_element() -> None:
    parsed = parse_arxiv_feed(feed("idlist_1111.2011v2.2016-format.xml"))
    assert parsed.total == 1
    (meta,) = parsed.entries
    assert meta.title == ("Quantum Criticality for Extended Nodes on a Bethe Lattice in the "
                          "Large Connectivity Limit")  # the line break inside is folded
    assert meta.doi == "10.1103/PhysRevB.85.115117"
    assert meta.venue == "Phys. Rev. B 85, 115117 (2012)"
    assert meta.categories == ["cond-mat.str-el", "cond-mat.stat-mech"]  # primary first
    assert (meta.arxiv_id, meta.arxiv_version, meta.year) == ("1111.2011", 2, 2011)
    assert meta.pdf_url == "https://arxiv.org/pdf/1111.2011"
    assert meta.abstract is not None and "\n" not in meta.abstract
    assert meta.entry_type == "article"


def test_two_ids_asked_one_entry_back() -> None:
    parsed = parse_arxiv_feed(feed("idlist_0808.05394,1707.08567.xml"))
    assert [m.arxiv_id for m in parsed.entries] == ["1707.08567"]
    assert len(parsed.entries[0].authors) == 34
    assert "Dirk WÃ¼bben" in parsed.entries[0].authors  # as arXiv sent it


def test_empty_result_and_error_feed() -> None:
    empty = parse_arxiv_feed(feed("idlist_0000.0000.xml"))
    assert (empty.entries, empty.errors, empty.total) == ([], [], 0)
    error = parse_arxiv_feed(feed("idlist_abc.http400.xml"))
    assert error.entries == []
    assert error.errors == ["incorrect id format for abc"]


@pytest.mark.parametrize("data", [b"", b"<html>busy</html>", b"not xml at all", b"{}"])
def test_not_a_feed(data: bytes) -> None:
    with pytest.raises(FeedError):
        parse_arxiv_feed(data)


# --------------------------------------------------------------------------- Crossref


def test_crossref_work_with_jats_abstract() -> None:
    meta = parse_crossref_work((CROSSREF / "10.1038_srep16696.json").read_bytes())
    assert meta.title.startswith("Single-molecule FRET studies on alpha-synuclein")
    assert "Parkinson’s" in meta.title
    assert meta.authors[:2] == ["Laura Tosatto", "Mathew H. Horrocks"]
    assert (meta.year, meta.venue, meta.doi) == (2015, "Scientific Reports", "10.1038/srep16696")
    assert meta.url == "https://doi.org/10.1038/srep16696"
    assert meta.pdf_url == "https://www.nature.com/articles/srep16696.pdf"
    assert meta.entry_type == "article"
    assert meta.abstract is not None
    assert meta.abstract.startswith("Oligomers of alpha-synuclein")
    assert "<jats" not in meta.abstract and "Förster" in meta.abstract


def test_crossref_work_without_abstract_and_family_only_author() -> None:
    plos = parse_crossref_work((CROSSREF / "10.1371_journal.pone.0033693.json").read_bytes())
    assert plos.abstract is None and plos.year == 2012 and plos.venue == "PLoS ONE"
    assert plos.authors[0] == "Shankar Sadasivan" and len(plos.authors) == 6
    ijo = parse_crossref_work((CROSSREF / "10.3892_ijo_00000353.json").read_bytes())
    assert ijo.authors == ["Stravopodis"] and ijo.year == 2009


def test_crossref_not_a_work() -> None:
    with pytest.raises(FeedError):
        parse_crossref_work((CROSSREF / "10.1371_notarealdoi.404.txt").read_bytes())
    with pytest.raises(FeedError):
        parse_crossref_work(b'{"status": "failed", "message": []}')


def test_strip_jats() -> None:
    assert strip_jats("<jats:title>Abstract</jats:title><jats:p>A &amp; B <jats:italic>in"
                      "</jats:italic> vivo.</jats:p><jats:p>Second.</jats:p>") == \
        "A & B in vivo.\nSecond."


# --------------------------------------------------------------------------- BibTeX

BIB = r"""
@article{murray2012quantum,
  title = {Quantum Criticality for Extended Nodes on a {Bethe} Lattice},
  author = {Murray, James M. and Del Maestro, Adrian and Tesanovic, Zlatko},
  journal = {Phys. Rev. B},
  year = {2012},
  doi = {10.1103/PhysRevB.85.115117},
  keywords = {quantum, lattice}
}

@misc{nguyen2021zero,
  title = {0},
  author = {Quan Thoi Minh Nguyen},
  year = 2021,
  eprint = {2104.12255},
  archivePrefix = {arXiv},
  primaryClass = {cs.CR}
}

@inproceedings{vaswani,
  title = "Attention Is All You Need",
  author = {Vaswani, Ashish and others},
  booktitle = {NeurIPS},
  year = {2017},
  url = {https://arxiv.org/abs/1706.03762}
}

@article{broken,
  title = {Never closed
"""


def test_bibtex_entries_one_or_many() -> None:
    parsed = parse_bibtex(BIB)
    assert [m.bibtex_key for m in parsed.entries] == ["murray2012quantum", "nguyen2021zero",
                                                      "vaswani"]
    murray, zero, vaswani = parsed.entries
    assert murray.title == "Quantum Criticality for Extended Nodes on a Bethe Lattice"
    assert murray.authors == ["James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic"]
    assert (murray.doi, murray.year, murray.venue) == ("10.1103/PhysRevB.85.115117", 2012,
                                                       "Phys. Rev. B")
    assert murray.tags == ["quantum", "lattice"]
    assert (zero.arxiv_id, zero.title, zero.categories) == ("2104.12255", "0", ["cs.CR"])
    assert vaswani.arxiv_id == "1706.03762" and vaswani.authors == ["Ashish Vaswani"]
    assert vaswani.venue == "NeurIPS" and vaswani.entry_type == "inproceedings"
    assert len(parsed.problems) == 1 and "line" in parsed.problems[0]
    one = parse_bibtex("@misc{k, title={Just one}}")
    assert [m.title for m in one.entries] == ["Just one"] and one.problems == []


def test_bibtex_helpers() -> None:
    assert unbrace(r"The {BERT} {\"u}ber $\sigma$ {{Model}}") == r"The BERT {\"u}ber $\sigma$ Model"
    assert split_authors("Doe, Jane and {Barnes and Noble} and R. Roe") == \
        ["Jane Doe", "Barnes and Noble", "R. Roe"]
    assert balance_braces("a } b { c {d} \\") == "a  b  c {d} "


def paper(pid: int, **fields: object) -> Paper:
    p = Paper(id=pid, added=1_795_000_000.0)
    for key, value in fields.items():
        setattr(p, key, value)
    return p


def test_bibtex_round_trip_through_bibtexparser() -> None:
    papers = [
        paper(1, title="0", authors=["Quan Thoi Minh Nguyen"], year=2021, arxiv_id="2104.12255",
              categories=["cs.CR"], abstract="x*0 = 0, $35,000"),
        paper(2, title=HOSTILE_TITLE + " {unbalanced", authors=["Mallory [i]M[/i]", "Ö. Ünal"],
              year=2024, doi="10.1234/hostile.1", venue="J. {Weird} }Venue",
              abstract=HOSTILE_ABSTRACT + " 100% sure @home", tags=["markup", "a,b"]),
        paper(3, title="Quantum Criticality", authors=["James M. Murray"], year=2012,
              doi="10.1103/PhysRevB.85.115117", venue="Phys. Rev. B", entry_type="article"),
        paper(4, title="Quantum Criticality", authors=["James M. Murray"], year=2012),
        paper(5, arxiv_id="1111.2011"),  # pending: no title yet
    ]
    text = to_bibtex(papers)
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == []
    assert len(library.entries) == 5
    keys = [e.key for e in library.entries]
    assert len(set(keys)) == 5 and keys[0] == "nguyen20210"
    back = parse_bibtex(text)
    assert back.problems == []
    zero, hostile, murray, murray2, pending = back.entries
    assert (zero.title, zero.arxiv_id, zero.authors, zero.year) == (
        "0", "2104.12255", ["Quan Thoi Minh Nguyen"], 2021)
    assert "[bold]Not bold[/]" in hostile.title and "$\\sigma$" in hostile.title
    assert hostile.doi == "10.1234/hostile.1"
    assert hostile.authors == ["Mallory [i]M[/i]", "Ö. Ünal"]
    assert murray.doi == "10.1103/PhysRevB.85.115117" and murray.venue == "Phys. Rev. B"
    assert murray2.doi is None
    assert pending.arxiv_id == "1111.2011" and pending.title == "arXiv:1111.2011"


def test_bibtex_export_is_valid_for_bibtex_itself(tmp_path: Path) -> None:
    """The exported file also parses in a fresh interpreter (no state shared)."""
    bib = tmp_path / "out.bib"
    bib.write_text(to_bibtex([paper(1, title="A {B} $c$", authors=["D E"], year=2020)]))
    code = ("import bibtexparser,sys; lib = bibtexparser.parse_file(sys.argv[1]); "
            "assert not lib.failed_blocks; print(lib.entries[0]['title'])")
    out = subprocess.run([sys.executable, "-c", code, str(bib)], capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "A {B} $c$"


# --------------------------------------------------------------------------- Markdown


def test_markdown_reading_list_with_takeaways() -> None:
    papers = [
        paper(1, title="0", authors=["Quan Thoi Minh Nguyen"], year=2021, arxiv_id="2104.12255",
              status="read", finished=1_795_000_000.0, takeaway="x*0 = 0 *always*", rating=4),
        paper(2, title="[link](http://evil) $\\sigma$", status="reading", doi="10.1/x"),
        paper(3, title="Queued one", status="queued"),
    ]
    text = to_markdown(papers, 1_795_000_000.0)
    lines = text.splitlines()
    assert lines[0] == "# Reading list"
    assert "## Read" in lines and "## Reading" in lines and "## Queue" in lines
    assert any("[0](<https://arxiv.org/abs/2104.12255>)" in line for line in lines)
    assert "  - Takeaway: x\\*0 = 0 \\*always\\*" in lines
    assert any("★★★★" in line for line in lines)
    assert "\\[link\\](http://evil) $\\\\sigma$" in text  # no link smuggled in
