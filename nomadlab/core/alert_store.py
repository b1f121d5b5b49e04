"""The alert log: alerts kept in the Store (component "alerts"), for the alerts screen,
its counts and ``nomadlab alerts``. Store access only; nothing here crosses the network."""

from __future__ import annotations

import json
from typing import Any

from nomadlab.core.alerts import SEVERITY_RANK, Alert, severity_at_least
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.store import Store


class AlertLog:
    """Alerts kept in the Store (component "alerts"): the alerts screen and its counts.

    Store access only; nothing here crosses the network.
    """

    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock

    def insert(self, alert: Alert) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO alerts(time, rule, severity, title, message, host, log, outcome,"
                " line, acknowledged, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alert.time, alert.rule, alert.severity, alert.title, alert.message,
                 alert.host, alert.log, alert.outcome, alert.line, alert.acknowledged,
                 json.dumps(alert.extra, default=str)),
            )
            new_id = cursor.lastrowid
        assert new_id is not None
        alert.id = int(new_id)
        return alert.id

    def get(self, alert_id: int) -> Alert | None:
        rows = self.store.query("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _from_row(rows[0]) if rows else None

    def recent(self, limit: int = 200, *, unacknowledged: bool = False,
               severity: str | None = None, min_severity: str | None = None,
               since: float | None = None) -> list[Alert]:
        """Newest first. ``severity``: exactly this one; ``min_severity``: this or worse."""
        where, params = _filters(unacknowledged, severity, min_severity, since)
        rows = self.store.query(
            f"SELECT * FROM alerts{where} ORDER BY time DESC, id DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [_from_row(row) for row in rows]

    def count_unacknowledged(self, min_severity: str | None = None) -> int:
        where, params = _filters(True, None, min_severity, None)
        rows = self.store.query(f"SELECT COUNT(*) AS n FROM alerts{where}", params)
        return int(rows[0]["n"])

    def acknowledge(self, alert_id: int) -> bool:
        """True when the alert existed and was not yet acknowledged."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET acknowledged = ? WHERE id = ? AND acknowledged IS NULL",
                (self.clock.time(), alert_id),
            )
        return cursor.rowcount > 0

    def acknowledge_all(self) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET acknowledged = ? WHERE acknowledged IS NULL",
                (self.clock.time(),),
            )
        return int(cursor.rowcount)

    def prune(self, older_than: float) -> int:
        """Forget alerts from before ``older_than`` (wall clock)."""
        with self.store.transaction() as db:
            cursor = db.execute("DELETE FROM alerts WHERE time < ?", (older_than,))
        return int(cursor.rowcount)


def _filters(unacknowledged: bool, severity: str | None, min_severity: str | None,
             since: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if unacknowledged:
        clauses.append("acknowledged IS NULL")
    if severity is not None:
        clauses.append("severity = ?")
        params.append(severity)
    if min_severity is not None:
        allowed = [s for s in SEVERITY_RANK if severity_at_least(s, min_severity)]
        clauses.append(f"severity IN ({', '.join('?' for _ in allowed)})")
        params.extend(allowed)
    if since is not None:
        clauses.append("time >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _from_row(row: Any) -> Alert:
    try:
        extra = json.loads(row["extra"])
    except (TypeError, ValueError):
        extra = {}
    return Alert(
        id=int(row["id"]), time=float(row["time"]), rule=row["rule"], severity=row["severity"],
        title=row["title"], message=row["message"], host=row["host"], log=row["log"],
        outcome=row["outcome"], line=row["line"], acknowledged=row["acknowledged"],
        extra=extra if isinstance(extra, dict) else {},
    )
