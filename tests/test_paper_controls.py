"""Paper metadata keeps no control bytes (issue 9, item 22).

A BibTeX file and a Crossref answer (a real HTTP server on 127.0.0.1) whose title and
abstract hold escape sequences: what is stored has them stripped, and `paper show`,
`paper list`, `--json` and `paper export` print none of them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from clirun import run_main
from test_papers_support import CROSSREF, PaperServer, free_port, no_proxies

__all__ = ["no_proxies"]

ESC_TITLE = "Evil \x1b]0;pwned\x07Title\x1b[2J with \x9b31mcolour\x1b[0m"
ESC_ABSTRACT = "Line one\x1b]52;c;ZXZpbA==\x07 ok\r\nLine two\twith a tab\x07\x90dcs\x9c"
CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"] + \
    [chr(c) for c in range(0x7f, 0xa0)]
HOSTILE_DOI = "10.9999/hostile"


def no_controls(text: str) -> bool:
    return not any(ch in text for ch in CONTROLS)


@dataclass
class HostileServer(PaperServer):
    """Crossref answering one DOI with control bytes in its title and abstract."""

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if path == f"/works/{HOSTILE_DOI}":
            data = json.loads((CROSSREF / "10.1038_srep16696.json").read_text())
            data["message"]["title"] = [ESC_TITLE]
            data["message"]["abstract"] = f"<jats:p>{ESC_ABSTRACT}</jats:p>"
            data["message"]["DOI"] = HOSTILE_DOI
            return 200, "application/json", json.dumps(data).encode()
        return super().answer(path, query)


@pytest.fixture
def server(isolated_home: Path) -> object:
    hostile = HostileServer(free_port()).start()
    path = isolated_home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f'[papers]\narxiv_api = "{hostile.arxiv_api}"\n'
                    f'crossref_api = "{hostile.crossref_api}"\n'
                    'arxiv_interval = "0s"\ntimeout = "5s"\n')
    yield hostile
    hostile.stop()


def nomadlab(*args: str) -> subprocess.CompletedProcess[str]:
    result = run_main(*args)  # in this process (tests/clirun.py)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def check_printers(ref: str) -> dict[str, object]:
    shown = nomadlab("paper", "show", ref)
    assert shown.returncode == 0, shown.stderr
    assert no_controls(shown.stdout), repr(shown.stdout)
    as_json = nomadlab("paper", "show", ref, "--json")
    assert as_json.returncode == 0
    data: dict[str, object] = json.loads(as_json.stdout)
    listed = nomadlab("paper", "list")
    assert no_controls(listed.stdout), repr(listed.stdout)
    for fmt in ("--bibtex", "--markdown"):
        exported = nomadlab("paper", "export", fmt)
        assert exported.returncode == 0, exported.stderr
        assert no_controls(exported.stdout), repr(exported.stdout)
    return data


def test_bibtex_import_strips_controls(server: PaperServer, tmp_path: Path) -> None:
    bib = tmp_path / "lib.bib"
    bib.write_text("@article{evil, title={" + ESC_TITLE + "}, author={Doe, Jane},"
                   " year={2024}, abstract={" + ESC_ABSTRACT + "}}\n", encoding="utf-8")
    result = nomadlab("paper", "import", str(bib))
    assert result.returncode == 0, result.stderr
    assert no_controls(result.stdout)
    data = check_printers("1")
    assert data["title"] == "Evil Title with colour"
    abstract = str(data["abstract"])
    assert no_controls(abstract)
    assert "Line one ok" in abstract and "Line two" in abstract


def test_crossref_answer_strips_controls(server: PaperServer) -> None:
    result = nomadlab("paper", "add", f"doi:{HOSTILE_DOI}")
    assert result.returncode == 0, result.stderr
    assert no_controls(result.stdout), repr(result.stdout)
    data = check_printers("1")
    assert data["title"] == "Evil Title with colour"
    assert no_controls(str(data["abstract"]))
    assert "Line one ok" in str(data["abstract"])
