"""``nomadlab paper ...`` end to end: ``main`` in this process in the isolated home, a real
HTTP server on 127.0.0.1 answering with the recorded arXiv and Crossref responses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import bibtexparser
import pytest
from clirun import run_main
from test_papers_support import PaperServer, no_proxies, paper_server

__all__ = ["no_proxies", "paper_server"]

def nomadlab(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``nomadlab ...`` through ``main`` in this process (tests/clirun.py); proxies are
    unset by ``no_proxies``."""
    result = run_main(*args, input=input)
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


@pytest.fixture
def configured(isolated_home: Path, paper_server: PaperServer) -> PaperServer:
    path = isolated_home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f'[papers]\narxiv_api = "{paper_server.arxiv_api}"\n'
                    f'crossref_api = "{paper_server.crossref_api}"\n'
                    'arxiv_interval = "0s"\ntimeout = "5s"\nweekly_cap = 2\n')
    return paper_server


def ids_in(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^#(\d+)", text, re.MULTILINE)]


def listed(*extra: str) -> dict[str, object]:
    result = nomadlab("paper", "list", "--json", *extra)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_offline_add_then_any_later_command_fills_it_in(configured: PaperServer) -> None:
    result = nomadlab("paper", "add", "2104.12255v1", "--wait", "3")  # nothing listens
    assert result.returncode == 0, result.stderr
    assert ids_in(result.stdout) == [1]
    assert "metadata pending (cannot connect" in result.stdout
    assert "filled in later by itself" in result.stdout
    data = listed()
    (paper,) = data["papers"]  # type: ignore[misc]
    assert paper["metadata"] == "pending" and paper["title"] == ""
    configured.start()  # the service answers again
    data = listed()
    (paper,) = data["papers"]  # type: ignore[misc]
    assert (paper["title"], paper["metadata"], paper["authors"]) == (
        "0", "complete", ["Quan Thoi Minh Nguyen"])
    assert paper["arxiv_id"] == "2104.12255" and paper["arxiv_version"] == 1


def test_add_every_kind_and_duplicates(configured: PaperServer, tmp_path: Path) -> None:
    configured.start()
    result = nomadlab("paper", "add", "https://arxiv.org/abs/astro-ph/0601001v1",
                      "doi:10.1038/srep16696", "--tag", "week47")
    assert result.returncode == 0, result.stderr
    assert ids_in(result.stdout) == [1, 2]
    assert "#1 added: Frequency of Hot Jupiters" in result.stdout
    assert "#2 added: Single-molecule FRET" in result.stdout
    again = nomadlab("paper", "add", "astro-ph/0601001", "https://doi.org/10.1038/SREP16696")
    assert again.returncode == 0
    assert again.stdout.count("already in the queue (merged)") == 2
    assert ids_in(again.stdout) == [1, 2]
    titled = nomadlab("paper", "add", "--title", "Attention Is All You Need", "--priority", "2")
    assert ids_in(titled.stdout) == [3] and "added: Attention Is All You Need" in titled.stdout
    bib = tmp_path / "refs.bib"
    bib.write_text("@misc{a, title={From a file}, year={2020}}\n"
                   "@misc{b, title={Attention is all you need}}\n"
                   "@misc{broken, title = {never closed\n")
    imported = nomadlab("paper", "add", str(bib))
    assert imported.returncode == 0, imported.stderr
    assert ids_in(imported.stdout) == [4, 3]
    assert "skipped unreadable BibTeX" in imported.stderr
    data = listed()
    papers = {p["id"]: p for p in data["papers"]}  # type: ignore[attr-defined]
    assert papers[1]["tags"] == ["week47"] and papers[3]["priority"] == 2
    assert len(papers) == 4
    assert not configured.requests[0].headers.get("User-Agent", "").startswith("Python-urllib")


def test_malformed_and_unknown_ids(configured: PaperServer) -> None:
    configured.start()
    bad = nomadlab("paper", "add", "abc")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == ("nomadlab: not an arXiv id, DOI, URL or BibTeX file: 'abc' (to add a "
                          "paper by its title, give a title of several words)\n")
    malformed = nomadlab("paper", "add", "2104.122", "arXiv:foo")
    assert malformed.returncode == 2
    assert "malformed arXiv id '2104.122'" in malformed.stderr
    assert "malformed arXiv id 'foo'" in malformed.stderr
    unknown = nomadlab("paper", "add", "0000.0000", "10.1371/notarealdoi", "2104.12255")
    assert unknown.returncode == 2
    assert "nomadlab: arXiv has no paper 0000.0000" in unknown.stderr
    assert "nomadlab: Crossref does not know the DOI 10.1371/notarealdoi" in unknown.stderr
    assert "added: 0" in unknown.stdout  # the good one is kept
    assert [p["arxiv_id"] for p in listed()["papers"]] == ["2104.12255"]  # type: ignore[attr-defined]
    assert configured.arxiv_requests()[-1].query["id_list"] == ["0000.0000,2104.12255"]
    for args, message in ((("paper", "start", "99"), "nomadlab: no paper #99\n"),
                          (("paper", "drop", "xyz"), "is not a paper id"),
                          (("paper", "read", "2104.99999", "--takeaway", "x"),
                           "no paper with arXiv:2104.99999")):
        result = nomadlab(*args)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)


def test_weekly_cap_read_drop(configured: PaperServer) -> None:
    for title in ("First paper of the week", "Second paper of the week",
                  "Third paper of the week"):
        assert nomadlab("paper", "add", "--title", title).returncode == 0
    assert nomadlab("paper", "start", "1").returncode == 0
    second = nomadlab("paper", "start", "#2")
    assert second.returncode == 0 and "(2 of 2 this week)" in second.stdout
    third = nomadlab("paper", "start", "3")
    assert third.returncode == 1
    assert "weekly cap reached: 2 of 2 papers started this week" in third.stderr
    assert "nomadlab paper start 3 --anyway" in third.stderr
    assert listed()["started"] == 2
    anyway = nomadlab("paper", "start", "3", "--anyway")
    assert anyway.returncode == 0 and "past the weekly cap" in anyway.stdout
    no_takeaway = nomadlab("paper", "read", "1")
    assert no_takeaway.returncode == 2
    assert 'a one-line takeaway is needed: nomadlab paper read 1 --takeaway "..."' in \
        no_takeaway.stderr
    read = nomadlab("paper", "read", "1", "--takeaway", "Two understood [b]beat[/b] twenty",
                    "--rating", "5")
    assert read.returncode == 0 and "takeaway: Two understood [b]beat[/b] twenty" in read.stdout
    assert nomadlab("paper", "read", "1", "--takeaway", "again").returncode == 2
    assert nomadlab("paper", "drop", "2").returncode == 0
    assert nomadlab("paper", "drop", "2").returncode == 2
    data = listed("--status", "all")
    states = {p["id"]: p["status"] for p in data["papers"]}  # type: ignore[attr-defined]
    assert states == {1: "read", 2: "dropped", 3: "reading"}
    assert data["started"] == 3 and data["cap"] == 2
    assert [p["id"] for p in listed("--status", "read")["papers"]] == [1]  # type: ignore[attr-defined]
    text = nomadlab("paper", "list")
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("Week ") and "3 of 2 papers started" in \
        text.stdout


def test_export_bibtex_and_markdown(configured: PaperServer, tmp_path: Path) -> None:
    configured.start()
    assert nomadlab("paper", "add", "2104.12255v1", "1111.2011v2").returncode == 0
    assert nomadlab("paper", "add", "--title", "[bold]Markup[/] and $\\sigma$ in a title")
    assert nomadlab("paper", "start", "1").returncode == 0
    assert nomadlab("paper", "read", "1", "--takeaway", "x*0 = 0 breaks BLS").returncode == 0
    bib = nomadlab("paper", "export", "--bibtex")
    assert bib.returncode == 0
    library = bibtexparser.parse_string(bib.stdout)
    assert library.failed_blocks == [] and len(library.entries) == 3
    by_title = {e["title"]: e for e in library.entries}
    assert by_title["0"]["eprint"] == "2104.12255"
    quantum = next(e for t, e in by_title.items() if t.startswith("Quantum Criticality"))
    assert quantum["doi"] == "10.1103/PhysRevB.85.115117"
    assert "[bold]Markup[/] and $\\sigma$ in a title" in by_title
    only_read = bibtexparser.parse_string(nomadlab("paper", "export", "--status", "read").stdout)
    assert [e["title"] for e in only_read.entries] == ["0"]
    out = tmp_path / "list.md"
    md = nomadlab("paper", "export", "--markdown", "-o", str(out))
    assert md.returncode == 0 and "3 papers written" in md.stderr
    text = out.read_text()
    assert "## Read" in text and "Takeaway: x\\*0 = 0 breaks BLS" in text
    picked = nomadlab("paper", "export", "2", "arXiv:2104.12255")
    assert len(bibtexparser.parse_string(picked.stdout).entries) == 2


def test_import_and_show(configured: PaperServer, tmp_path: Path) -> None:
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{murray, title={Quantum {Criticality}}, author={Murray, James M.},"
                   " year={2012}, doi={10.1103/PhysRevB.85.115117}, journal={Phys. Rev. B}}\n")
    result = nomadlab("paper", "import", str(bib), "--tag", "lib")
    assert result.returncode == 0, result.stderr
    assert "1 added, 0 already in the queue" in result.stdout
    shown = nomadlab("paper", "show", "doi:10.1103/physrevb.85.115117")
    assert shown.returncode == 0
    assert "title: Quantum Criticality" in shown.stdout
    assert "authors: James M. Murray" in shown.stdout and "tags: lib" in shown.stdout
    missing = nomadlab("paper", "import", str(tmp_path / "nope.bib"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
