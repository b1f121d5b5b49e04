"""Papers: a reading queue that keeps to the two-paper rule. No Textual, no sockets.

Papers are added by arXiv id or URL, DOI, BibTeX or title, and saved at once; their
metadata comes from arXiv or Crossref through a :class:`MetadataSource` (the network
side lives in ``nomadlab/remote/papers_api.py``). Offline, a paper waits as "metadata
pending" and is filled in later: by the service's own loop in the TUI, and by every
``nomadlab paper`` command. Duplicates (same arXiv id without version, same DOI, same
title for papers without ids) are merged, never added twice.

The rule: at most ``[papers] weekly_cap`` papers started per ISO week (local time);
starting one more needs ``anyway=True`` (the UI asks, the CLI wants ``--anyway``). A
weekly review triages what was added since the last one.

The parts: ``model`` (the paper and its rules), ``records`` (its rows), ``lookups``
(metadata), ``service`` (the operations), ``ids`` and ``formats`` (parsing and export),
``editor`` (opening a page, editing notes). Their public names are re-exported here.
"""

from __future__ import annotations

from nomadlab.core.papers.editor import (
    edit_in_editor,
    editor_command,
    open_method,
)
from nomadlab.core.papers.model import (
    ARXIV_BATCH,
    ARXIV_MIN_INTERVAL,
    BACKOFF_FIRST,
    BACKOFF_MAX,
    BIBLIO_FIELDS,
    JSON_FIELDS,
    METADATA_STATES,
    STATUS_ORDER,
    STATUS_RANK,
    STATUSES,
    Added,
    CapReached,
    FillReport,
    Lookup,
    LookupFailed,
    MetadataSource,
    Outcome,
    Paper,
    PaperError,
    Week,
    backoff,
    matches,
    parse_tags,
    queue_key,
    review_day_start,
    stored_meta,
    week_of,
)
from nomadlab.core.papers.service import (
    PaperService,
)

__all__ = [
    "ARXIV_BATCH",
    "ARXIV_MIN_INTERVAL",
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "BIBLIO_FIELDS",
    "JSON_FIELDS",
    "METADATA_STATES",
    "STATUSES",
    "STATUS_ORDER",
    "STATUS_RANK",
    "Added",
    "CapReached",
    "FillReport",
    "Lookup",
    "LookupFailed",
    "MetadataSource",
    "Outcome",
    "Paper",
    "PaperError",
    "PaperService",
    "Week",
    "backoff",
    "edit_in_editor",
    "editor_command",
    "matches",
    "open_method",
    "parse_tags",
    "queue_key",
    "review_day_start",
    "stored_meta",
    "week_of",
]
