"""``nomadlab paper add | list | show | start | read | drop | export | import``.

Every command first retries papers whose metadata is pending (a few seconds at most),
so a paper added offline fills in by itself the next time any of them runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nomadlab.cli.common import (
    UserError,
    add_config_option,
    error,
    interactive,
    print_json,
    with_service,
)
from nomadlab.core.papers import (
    STATUSES,
    Added,
    CapReached,
    FillReport,
    Paper,
    PaperError,
    PaperService,
)
from nomadlab.core.papers.ids import IdError, Source, classify
from nomadlab.core.text import visible
from nomadlab.remote.papers_api import make_service
from nomadlab.ui import render

CATCH_UP_BUDGET = 4.0  # seconds a command spends on papers left pending earlier
ADD_WAIT = 8.0  # seconds `add` waits for the metadata of what it adds
STATUS_CHOICES = (*STATUSES, "active", "all")
STATUS_MARK = {"queued": "·", "reading": "▶", "read": "✓", "dropped": "✗"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("paper", help="the reading queue: add, list, start, read, drop, export",
                       description="The reading queue and the weekly cap on papers started "
                                   "(the two-paper rule).")
    add_config_option(p)
    ps = p.add_subparsers(title="actions", metavar="ACTION", required=True)

    a = ps.add_parser("add", help="add papers by arXiv id or URL, DOI, BibTeX file or title",
                      description="Add papers: arXiv ids (2104.12255, 2104.12255v1, "
                                  "astro-ph/0601001) or abs/pdf URLs, DOIs or doi.org URLs, "
                                  "BibTeX files, or a title of several words. Prints the id "
                                  "of each paper stored. Offline, papers are saved with their "
                                  "metadata pending and filled in later by themselves.")
    a.add_argument("items", nargs="*", metavar="ID|URL|DOI|FILE")
    a.add_argument("--title", help="add a paper by its title alone")
    a.add_argument("--tag", action="append", default=[], dest="tags", help="tag (repeatable)")
    a.add_argument("--priority", type=int, help="higher is read sooner (default 0)")
    a.add_argument("--wait", type=float, default=ADD_WAIT, metavar="SECONDS",
                   help=f"how long to wait for metadata (default {ADD_WAIT:.0f}; 0: don't)")
    a.add_argument("--json", action="store_true", help="one JSON object per paper stored")
    add_config_option(a)
    a.set_defaults(func=add_papers)

    a = ps.add_parser("import", help="import every entry of BibTeX files")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--tag", action="append", default=[], dest="tags", help="tag (repeatable)")
    add_config_option(a)
    a.set_defaults(func=import_files)

    a = ps.add_parser("list", help="the queue, what is being read, what was read",
                      description="Papers in queue order: being read, then queued by priority "
                                  "and age, then read. Dropped papers only with --status.")
    a.add_argument("--status", choices=STATUS_CHOICES)
    a.add_argument("--tag")
    a.add_argument("--json", action="store_true")
    add_config_option(a)
    a.set_defaults(func=list_papers)

    a = ps.add_parser("show", help="everything about one paper")
    a.add_argument("paper", metavar="ID")
    a.add_argument("--json", action="store_true")
    add_config_option(a)
    a.set_defaults(func=show_paper)

    a = ps.add_parser("start", help="start reading a paper (counts against the weekly cap)",
                      description="queued -> reading. Past the weekly cap this exits with "
                                  "status 1 unless --anyway is given.")
    a.add_argument("paper", metavar="ID", help="its number, arXiv id or DOI")
    a.add_argument("--anyway", action="store_true", help="start it even past the weekly cap")
    add_config_option(a)
    a.set_defaults(func=start_paper)

    a = ps.add_parser("read", help="mark a paper read, with a one-line takeaway")
    a.add_argument("paper", metavar="ID")
    a.add_argument("--takeaway", help="what you take away from it, in one line")
    a.add_argument("--rating", type=int, choices=range(1, 6), metavar="1-5")
    add_config_option(a)
    a.set_defaults(func=read_paper)

    a = ps.add_parser("drop", help="drop a paper from the queue")
    a.add_argument("paper", metavar="ID")
    add_config_option(a)
    a.set_defaults(func=drop_paper)

    a = ps.add_parser("export", help="BibTeX or a Markdown reading list",
                      description="Export papers (default: all but dropped) as BibTeX, or as "
                                  "a Markdown reading list with takeaways.")
    kind = a.add_mutually_exclusive_group()
    kind.add_argument("--bibtex", action="store_const", const="bibtex", dest="format")
    kind.add_argument("--markdown", action="store_const", const="markdown", dest="format")
    a.add_argument("papers", nargs="*", metavar="ID", help="only these papers")
    a.add_argument("--status", choices=STATUS_CHOICES)
    a.add_argument("--tag")
    a.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    add_config_option(a)
    a.set_defaults(func=export_papers, format="bibtex")


# ---------------------------------------------------------------------------- helpers


_command = with_service(make_service, PaperError)  # a command given the papers service


def _report(report: FillReport) -> None:
    for paper in report.filled:
        print(f"nomadlab: metadata filled in for #{paper.id}: {render.clean(paper.label, 100)}",
              file=sys.stderr)
    for paper in [*report.missing, *report.invalid]:
        print(f"nomadlab: #{paper.id}: {render.clean(paper.metadata_error or 'not found')}",
              file=sys.stderr)


def _catch_up(service: PaperService) -> None:
    """Papers left pending by an earlier command (offline then): try them again."""
    if service.due_lookups(force=True):
        _report(service.refresh(force=True, budget=CATCH_UP_BUDGET))


def _resolve(service: PaperService, text: str) -> Paper:
    return service.find(text)  # a PaperError is the user's: see _command


def _week_line(service: PaperService) -> str:
    started, cap = service.week_count()
    line = f"Week {service.week().label}: {started} of {cap} papers started"
    if started > cap:
        line += " (past the cap)"
    if service.review_due():
        line += f" · weekly review due ({len(service.review_candidates())} to triage)"
    return line


def _select(service: PaperService, status: str | None, tag: str | None) -> list[Paper]:
    if status is None:
        return service.papers(status=("queued", "reading", "read"), tag=tag)
    if status == "active":
        return service.papers(status=("queued", "reading"), tag=tag)
    return service.papers(status=status, tag=tag)


def _describe(paper: Paper) -> str:
    text = paper.label
    who = paper.short_authors()
    if who or paper.year:
        text += f" — {who}" + (f" ({paper.year})" if paper.year else "")
    if paper.ident and paper.title:
        text += f" [{paper.ident}]"
    return render.clean(text, 160)


# ---------------------------------------------------------------------------- add


@_command
def add_papers(args: argparse.Namespace, service: PaperService) -> int:
    items: list[str] = list(args.items)
    if not items and not args.title:
        raise UserError("nothing to add: give arXiv ids, DOIs, URLs, BibTeX files or --title")
    errors: list[str] = []
    added: list[Added] = []
    for item in items:
        try:
            source = classify(item)
            if source.kind in ("file", "bibtex"):
                text = service.read_bibtex(source) if source.kind == "file" else source.value
                entries, problems = service.import_bibtex(text, tags=args.tags)
                added += entries
                for problem in problems:
                    error(f"{item}: skipped {problem}")
            else:
                added += service.add_source(source, tags=args.tags, priority=args.priority)
        except (IdError, PaperError) as exc:
            errors.append(str(exc))
    if args.title:
        title = " ".join(args.title.split())
        if title:
            added += service.add_source(Source("title", title), tags=args.tags,
                                        priority=args.priority)
    report = FillReport()
    if service.due_lookups(force=True):
        report = service.refresh(force=True, budget=max(0.0, args.wait))
    failures = {paper.id: reason for paper, reason in report.failed}
    out: list[dict[str, object]] = []
    seen: set[int] = set()
    for entry in added:
        paper_id = report.merged.get(entry.paper.id, entry.paper.id)
        paper = service.get(paper_id)
        if paper is None or paper_id in seen:
            continue
        seen.add(paper_id)
        if paper.metadata in ("missing", "invalid"):
            if entry.created:
                service.delete(paper.id)  # it does not exist: nothing to keep
            errors.append(paper.metadata_error or f"{entry.given}: not found")
            continue
        out.append({**paper.as_dict(), "created": entry.created, "given": entry.given})
        if args.json:
            continue
        if paper.metadata == "pending":
            why = failures.get(paper.id) or paper.metadata_error or "not asked yet"
            print(f"#{paper.id} saved, metadata pending ({render.clean(why, 120)}); it is "
                  f"filled in later by itself: {render.clean(entry.given, 100)}")
        elif entry.created:
            print(f"#{paper.id} added: {_describe(paper)}")
        else:
            print(f"#{paper.id} already in the queue (merged): {_describe(paper)}")
    if args.json:
        print_json(out)
    for problem in errors:
        error(problem)
    return 2 if errors else 0


@_command
def import_files(args: argparse.Namespace, service: PaperService) -> int:
    errors = 0
    for name in args.files:
        path = Path(name).expanduser()
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            error(f"cannot read {name}: {exc.strerror or exc}")
            errors += 1
            continue
        try:
            added, problems = service.import_bibtex(text, tags=args.tags)
        except IdError as exc:
            error(f"{name}: {exc}")
            errors += 1
            continue
        new = sum(1 for a in added if a.created)
        print(f"{name}: {new} added, {len(added) - new} already in the queue")
        for item in added:
            verb = "added" if item.created else "merged"
            print(f"#{item.paper.id} {verb}: {_describe(item.paper)}")
        for problem in problems:
            error(f"{name}: skipped {problem}")
    _catch_up(service)
    return 2 if errors else 0


# ---------------------------------------------------------------------------- list & show


@_command
def list_papers(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    papers = _select(service, args.status, args.tag)
    if args.json:
        started, cap = service.week_count()
        print_json({"week": service.week().label, "started": started, "cap": cap,
                    "papers": [p.as_dict() for p in papers]})
        return 0
    print(_week_line(service))
    if not papers:
        print("No papers here. Add one: nomadlab paper add 2104.12255")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "", "P", "TITLE", "AUTHORS", "YEAR", "TAGS", "ADDED"):
        table.add_column(column, no_wrap=column != "TITLE", overflow="fold")
    for p in papers:
        title = render.safe(p.label, "bold" if p.status == "reading" else "")
        if p.metadata == "pending":
            title.append(" (metadata pending)", style="dim")
        elif p.metadata in ("missing", "invalid"):
            title.append(f" ({p.metadata})", style="red")
        table.add_row(Text(f"#{p.id}"), Text(STATUS_MARK.get(p.status, "?")),
                      Text(f"{p.priority:+d}" if p.priority else ""), title,
                      render.safe(p.short_authors(1), limit=24),
                      Text(str(p.year or "")), render.safe(", ".join(p.tags), limit=24),
                      Text(time.strftime("%Y-%m-%d", time.localtime(p.added))))
    Console(highlight=False, soft_wrap=False).print(table)
    return 0


@_command
def show_paper(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    paper = _resolve(service, args.paper)
    if args.json:
        print_json(paper.as_dict())
        return 0
    rows: list[tuple[str, str | None]] = [
        ("id", f"#{paper.id}"), ("title", paper.label),
        ("authors", ", ".join(paper.authors)), ("year", str(paper.year or "")),
        ("venue", paper.venue), ("ids", paper.ident), ("url", paper.open_url),
        ("pdf", paper.pdf), ("categories", ", ".join(paper.categories)),
        ("tags", ", ".join(paper.tags)), ("priority", str(paper.priority)),
        ("status", paper.status), ("metadata", paper.metadata
                                   + (f" ({paper.metadata_error})"
                                      if paper.metadata_error else "")),
        ("takeaway", paper.takeaway), ("rating", str(paper.rating or "")),
        ("cards", ", ".join(f"#{c}" for c in paper.cards)),
    ]
    for key, value in rows:
        if value:
            print(f"{key:>10}: {render.clean(value)}")
    if paper.abstract:
        print(f"\n{visible(paper.abstract, keep_lines=True)}")
    if paper.notes:
        print(f"\nNotes:\n{visible(paper.notes, keep_lines=True)}")
    return 0


# ---------------------------------------------------------------------------- state


@_command
def start_paper(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    paper = _resolve(service, args.paper)
    try:
        paper = service.start_reading(paper.id, anyway=args.anyway)
    except CapReached as exc:
        print(f"nomadlab: {exc} To start #{paper.id} anyway: nomadlab paper start "
              f"{paper.id} --anyway", file=sys.stderr)
        return 1
    started, cap = service.week_count()
    note = " — past the weekly cap" if paper.over_cap else ""
    print(f"#{paper.id} reading: {_describe(paper)} ({started} of {cap} this week{note})")
    return 0


@_command
def read_paper(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    paper = _resolve(service, args.paper)
    takeaway = args.takeaway
    if takeaway is None:
        if not interactive():
            raise UserError(f'a one-line takeaway is needed: nomadlab paper read {paper.id} '
                            '--takeaway "..."')
        takeaway = input(f"#{paper.id} {render.clean(paper.label, 60)}\nOne-line takeaway: ")
    paper = service.mark_read(paper.id, takeaway, rating=args.rating)
    print(f"#{paper.id} read: {_describe(paper)}\n  takeaway: {render.clean(paper.takeaway or '')}")
    return 0


@_command
def drop_paper(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    paper = _resolve(service, args.paper)
    paper = service.drop(paper.id)
    print(f"#{paper.id} dropped: {_describe(paper)}")
    return 0


# ---------------------------------------------------------------------------- export


@_command
def export_papers(args: argparse.Namespace, service: PaperService) -> int:
    _catch_up(service)
    papers: Sequence[Paper]
    if args.papers:
        papers = [_resolve(service, item) for item in args.papers]
    else:
        papers = _select(service, args.status, args.tag)
    text = (service.export_bibtex(papers) if args.format == "bibtex"
            else service.export_markdown(papers))
    if args.output:
        try:
            Path(args.output).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"{len(papers)} papers written to {args.output}", file=sys.stderr)
    else:
        if sys.stdout.isatty():  # to a terminal: nothing in it may drive the terminal
            text = visible(text, keep_lines=True)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
