"""The board service: lifecycle, what it reads of the other features (fleet, logs,
alerts, jobs) for cards with a run, run alerts moving cards, and export;
:func:`make_service` (the app's wiring)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nomadlab.core.alerts import Alert, clean_text
from nomadlab.core.board.edits import BoardEdits
from nomadlab.core.board.model import (
    ARCHIVE,
    BoardError,
    Card,
    CardHistory,
    Move,
    ValueChange,
    attempts,
    board_columns,
    card_markdown,
    finished_column,
    iso,
    run_column,
    stage_times,
)
from nomadlab.core.board.records import (
    _SELECT,
    KEEP_DELETED_DAYS,
    _card,
)
from nomadlab.core.board.runs import AlertsLike, AnnotatingAlerts, FleetLike, LogsLike
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.store import Store
from nomadlab.core.tasks import BackgroundTask

if TYPE_CHECKING:
    from nomadlab.core.features import JobsLookup

log = logging.getLogger(__name__)
# --------------------------------------------------------------------------- the service


class BoardService(BoardEdits):
    def __init__(self, config: Config, store: Store, clock: Clock = SYSTEM_CLOCK, *,
                 fleet: FleetLike | None = None, logs: LogsLike | None = None,
                 alerts: AlertsLike | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.fleet = fleet
        self.logs = logs
        self.alerts = alerts
        self.jobs: JobsLookup | None = None  # job=CLUSTER:ID links; set by the app
        self.local_changes = 0  # writes by this process (data_version misses those)
        self._watcher = BackgroundTask("board: follow running logs")
        self._unhook: Callable[[], None] | None = None
        if alerts is not None:
            if isinstance(alerts, AnnotatingAlerts):
                self._unhook = alerts.add_annotator(self.on_alert)
            else:  # an AlertHub without annotators: act on it, then say so separately
                self._unhook = alerts.subscribe(self._on_alert_told)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Purge long-deleted cards; follow the logs of running cards (every 2 s)."""
        now = self.clock.time()
        try:
            with self.store.transaction() as db:
                db.execute("DELETE FROM board_cards WHERE deleted IS NOT NULL AND deleted < ?",
                           (now - KEEP_DELETED_DAYS * 86400,))
        except sqlite3.Error as exc:
            log.warning("deleted cards not purged: %s", exc)
        self.follow_running_logs()
        self._watcher.start(self._watch)

    async def _watch(self) -> None:
        token = self.change_token()
        while True:
            await asyncio.sleep(2.0)
            now = self.change_token()
            if now != token:
                token = now
                self.follow_running_logs()

    async def stop(self) -> None:
        await self._watcher.stop()
        if self._unhook is not None:
            self._unhook()
            self._unhook = None

    # -------------------------------------------------------------- alerts

    def on_alert(self, alert: Alert) -> None:
        """A run alert of a card's log: move it (finished) or mark it failed, and name
        the card(s) in the alert (called before the alert is stored and delivered)."""
        if alert.outcome not in ("finished", "failed"):
            return
        if alert.log:
            cards = self._cards_of_log(alert.log)
        elif alert.extra.get("job") and alert.extra.get("cluster"):
            cards = self._cards_of_job(f"{alert.extra['cluster']}:{alert.extra['job']}")
        else:
            return
        named = []
        for card in cards:
            try:
                text = self._apply_outcome(card, alert)
            except (BoardError, sqlite3.Error) as exc:
                log.warning("card #%d: alert not applied: %s", card.id, exc)
                continue
            named.append((card, text))
        if not named:
            return
        alert.extra["cards"] = [card.id for card, _ in named]
        alert.message = (alert.message.rstrip() + " "
                         + " ".join(text for _card, text in named)).strip()

    def _on_alert_told(self, alert: Alert) -> None:
        before = alert.message
        self.on_alert(alert)
        if alert.message != before and self.alerts is not None:
            self.alerts.emit([Alert(time=alert.time, rule="board", severity="info",
                                    title=alert.title, message=alert.message[len(before):]
                                    .strip(), host=alert.host, log=alert.log,
                                    extra={"cards": alert.extra.get("cards", [])})])

    def _cards_of_log(self, name: str) -> list[Card]:
        rows = self.store.query(
            f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'"
            " ORDER BY id")
        return [c for c in map(_card, rows) if self.log_name(c) == name]

    def _cards_of_job(self, link: str) -> list[Card]:
        rows = self.store.query(
            f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'"
            " ORDER BY id")
        return [c for c in map(_card, rows) if c.links.get("job") == link]

    def _apply_outcome(self, card: Card, alert: Alert) -> str:
        title = clean_text(card.title, 60)
        if alert.outcome == "failed":
            reason = clean_text(alert.line or alert.title, 200) or alert.title
            self.mark_failed(card.id, reason, origin="auto")
            return f"Card #{card.id} \u201c{title}\u201d is marked failed."
        columns = self.columns(card.board)
        target = self.finished_column(card.board)
        if target is None or card.column not in columns:
            return f"Card #{card.id} \u201c{title}\u201d."
        if columns.index(card.column) >= columns.index(target):
            return f"Card #{card.id} \u201c{title}\u201d (already in {card.column})."
        self.move(card.id, target, origin="auto", auto=True,
                  reason=clean_text(alert.title, 200))
        return f"Card #{card.id} \u201c{title}\u201d moved to {target}."

    # -------------------------------------------------------------- export

    def markdown(self, card_id: int) -> str:
        card = self.card(card_id)
        if card is None:
            raise BoardError(f"no card #{card_id}")
        return card_markdown(card, self.history(card_id), now=self.clock.time(),
                             run_col=self.run_column(card.board))

    def export_markdown(self, board: str | None = None) -> str:
        now = self.clock.time()
        names = [board] if board else [b.name for b in self.boards()]
        out: list[str] = []
        for name in names:
            out.append(f"# Board: {name}\n")
            cards = self.all_cards(name)
            by_col: dict[str, list[Card]] = {}
            for card in sorted(cards, key=lambda c: (c.position, c.id)):
                by_col.setdefault(card.column, []).append(card)
            run_col = self.run_column(name)
            for col in [*self.columns(name), *(c for c in by_col if c not in self.columns(name)
                                               and c != ARCHIVE), ARCHIVE]:
                group = by_col.get(col, [])
                if not group:
                    continue
                out.append(f"## {col} ({len(group)})\n")
                for card in group:
                    out.append(card_markdown(card, self.history(card.id), now=now,
                                             run_col=run_col, level=3))
        return "\n".join(out)

    def export(self, board: str | None = None) -> dict[str, Any]:
        """Every card (archived ones too) with its column, params and their history,
        metrics (and history), links, moves and time per column."""
        now = self.clock.time()
        boards = [b for b in self.boards() if board is None or b.name == board]
        if board is not None and not boards:
            boards = [self.board_config(board)]
        cards = self.all_cards(board)
        ids = [c.id for c in cards]
        values: dict[int, list[sqlite3.Row]] = {}
        moves: dict[int, list[sqlite3.Row]] = {}
        if ids:
            for row in self.store.query(
                    "SELECT * FROM board_values WHERE card IN (SELECT id FROM board_cards"
                    " WHERE deleted IS NULL" + (" AND board = ?" if board else "") + ")"
                    " ORDER BY id", (board,) if board else ()):
                values.setdefault(row["card"], []).append(row)
            for row in self.store.query(
                    "SELECT * FROM board_moves WHERE card IN (SELECT id FROM board_cards"
                    " WHERE deleted IS NULL" + (" AND board = ?" if board else "") + ")"
                    " ORDER BY id", (board,) if board else ()):
                moves.setdefault(row["card"], []).append(row)
        out_cards = []
        for card in cards:
            card_moves = [Move(r["id"], r["from_col"], r["to_col"], r["time"], bool(r["auto"]),
                               r["origin"], r["reason"]) for r in moves.get(card.id, [])]
            history = CardHistory(
                [ValueChange(r["id"], r["kind"], r["key"], r["value"], r["time"])
                 for r in values.get(card.id, [])], card_moves)
            run_col = self.run_column(card.board)
            out_cards.append({
                "id": card.id, "board": card.board, "column": card.column,
                "position": card.position, "title": card.title,
                "hypothesis": card.hypothesis, "notes": card.notes, "tags": card.tags,
                "priority": card.priority_label or None,
                "failed": card.failed, "failed_at": iso(card.failed_at),
                "links": card.links, "params": card.params,
                "param_history": [{"key": v.key, "value": v.value, "time": iso(v.time)}
                                  for v in history.values if v.kind == "param"],
                "metrics": card.metrics,
                "metric_history": [{"key": v.key, "value": v.value, "time": iso(v.time)}
                                   for v in history.values if v.kind == "metric"],
                "moves": [{"from": m.from_col, "to": m.to_col, "time": iso(m.time),
                           "auto": m.auto, "origin": m.origin, "reason": m.reason}
                          for m in card_moves],
                "attempts": [{"number": a.number, "started": iso(a.started),
                              "ended": iso(a.ended), "params": a.params,
                              "changed": {k: list(v) for k, v in a.changed.items()}}
                             for a in attempts(history, run_col)],
                "seconds_in_columns": {k: round(v, 3) for k, v in
                                       stage_times(card, card_moves, now).items()},
                "created": iso(card.created), "updated": iso(card.updated),
                "entered": iso(card.entered), "archived": iso(card.archived),
            })
        return {
            "exported": iso(now),
            "boards": [{"name": b.name, "columns": board_columns(b), "wip": b.wip,
                        "finished_column": finished_column(board_columns(b),
                                                           self.config.board.finished_column),
                        "run_column": run_column(board_columns(b),
                                                 self.config.board.finished_column)}
                       for b in boards],
            "cards": out_cards,
        }


def make_service(*, config: Config, store: Store, clock: Clock, fleet: FleetLike | None = None,
                 logs: LogsLike | None = None, alerts: AlertsLike | None = None) -> BoardService:
    """The board feature's service (nomadlab/features.py)."""
    return BoardService(config, store, clock, fleet=fleet, logs=logs, alerts=alerts)
