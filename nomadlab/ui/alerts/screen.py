"""The alerts screen (key !): every alert, stored across restarts; acknowledge with a."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from nomadlab.core.alert_lines import ends_traceback, traceback_tail
from nomadlab.core.alerts import Alert, clean_text
from nomadlab.ui import render
from nomadlab.ui.footer import Footer
from nomadlab.ui.navigate import navigator
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def when(t: float) -> str:
    return time.strftime("%a %H:%M:%S", time.localtime(t))


class AlertsScreen(Screen[None]):
    TITLE = "Alerts"
    DEFAULT_CSS = """
    AlertsScreen #alert-table { height: 1fr; }
    AlertsScreen #alert-detail { height: auto; max-height: 16; padding: 0 1; }
    """
    BINDINGS = [
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("A", "acknowledge_all", "Acknowledge all"),
        Binding("u", "toggle_unacknowledged", "Only new"),
        Binding("l", "open_log", "Open its log"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.only_new = False
        self.alerts: list[Alert] = []
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Alerts")
        table: DataTable[Text] = DataTable(cursor_type="row", id="alert-table")
        yield table
        yield Static("", id="alert-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#alert-table", DataTable)
        table.add_column("When", key="when", width=12)
        table.add_column("", key="ack", width=1)
        table.add_column("Severity", key="severity", width=8)
        table.add_column("Where", key="where", width=22)
        table.add_column("What", key="what")
        table.border_title = "Alerts"
        hub = self.services.alerts
        if hub is not None:
            self._unsubscribe = hub.subscribe(lambda _alert: self.reload())
        self.reload()
        table.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        hub = self.services.alerts
        table = self.query_one("#alert-table", DataTable)
        if hub is None or hub.log is None:
            table.border_subtitle = "alerts are off"
            return
        keep = table.cursor_row
        self.alerts = hub.log.recent(500, unacknowledged=self.only_new)
        table.clear()
        for alert in self.alerts:
            where = alert.log or alert.host or ""
            table.add_row(
                Text(when(alert.time), style="dim"),
                Text("•" if alert.acknowledged is None else " ", style="bold magenta"),
                Text(alert.severity, style=SEVERITY_STYLE.get(alert.severity, "")),
                render.safe(where, "bold", 22),
                render.safe(alert.title, "" if alert.acknowledged is None else "dim"),
                key=str(alert.id),
            )
        if self.alerts:
            table.move_cursor(row=min(keep, len(self.alerts) - 1), animate=False)
        unread = hub.log.count_unacknowledged()
        table.border_subtitle = (f"{unread} not acknowledged" if unread else "all acknowledged") \
            + (" · showing only new" if self.only_new else "")
        self._detail()

    def _selected(self) -> Alert | None:
        table = self.query_one("#alert-table", DataTable)
        if not self.alerts:
            return None
        return self.alerts[min(table.cursor_row, len(self.alerts) - 1)]

    def _detail(self) -> None:
        alert = self._selected()
        detail = self.query_one("#alert-detail", Static)
        if alert is None:
            detail.update(Text(self._empty_text(), style="dim italic"))
            return
        text = Text()
        text.append_text(render.safe(alert.title, "bold"))
        text.append(f"  ({alert.rule}, {when(alert.time)})\n", style="dim")
        text.append_text(render.safe(alert.message))
        if alert.line:
            text.append("\n")
            text.append_text(render.safe(alert.line, "italic", 300))
            for line in self._context_lines(alert):
                text.append("\n  ")
                text.append_text(render.safe(line, "italic", 300))
        detail.update(text)

    def _empty_text(self) -> str:
        hub = self.services.alerts
        seen = 0
        if self.only_new and hub is not None and hub.log is not None:
            seen = len(hub.log.recent(1))
        if seen:
            return "No new alerts: every alert is acknowledged. u shows them all."
        return "No alerts yet. Rules: defaults plus [[alerts]] in the config."

    def _context_lines(self, alert: Alert) -> list[str]:
        """The lines after the one that fired: a traceback's last lines up to its
        exception line. Kept with the alert when they came with it; otherwise read from
        the log's buffer while nomadlab still holds it."""
        stored = alert.extra.get("context")
        context = [str(t) for t in stored] if isinstance(stored, list) else []
        if ends_traceback(context) or not (alert.line or "").lstrip().startswith("Traceback"):
            return context
        logs = self.services.logs
        tail = logs.tails.get(alert.log) if logs is not None and alert.log else None
        seq = alert.extra.get("seq")
        if tail is None or not isinstance(seq, int):
            return context
        index = tail.buffer.index_of(seq)
        if index is None:
            return context
        buffer = tail.buffer
        texts = [buffer[i].text for i in range(index, min(len(buffer), index + 61))]
        found = traceback_tail([clean_text(t) for t in texts], 0)
        return found if len(found) > len(context) or ends_traceback(found) else context

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def action_acknowledge(self) -> None:
        hub = self.services.alerts
        alert = self._selected()
        if hub is None or hub.log is None or alert is None or alert.id is None:
            return
        hub.log.acknowledge(alert.id)
        table = self.query_one("#alert-table", DataTable)
        row = table.cursor_row
        self.reload()
        if row + 1 < table.row_count:
            table.move_cursor(row=row + 1, animate=False)

    def action_acknowledge_all(self) -> None:
        hub = self.services.alerts
        if hub is not None and hub.log is not None:
            count = hub.log.acknowledge_all()
            self.notify(f"{count} alerts acknowledged.", timeout=2)
            self.reload()

    def action_toggle_unacknowledged(self) -> None:
        self.only_new = not self.only_new
        self.reload()

    def action_open_log(self) -> None:
        alert = self._selected()
        if alert is None or not alert.log:
            self.notify("This alert has no log.", severity="warning", timeout=2)
            return
        nav = navigator(self.app)
        if nav is not None:
            self.app.call_later(nav.open_log, alert.log, alert)
