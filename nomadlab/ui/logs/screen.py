"""Screen 2: the logs, their state, and one or two live viewers side by side."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Input

from nomadlab.core.alerts import LINE_LIMIT, Alert, clean_text
from nomadlab.core.logs import LogBuffer, LogLine, LogState, LogStatus
from nomadlab.ui import render
from nomadlab.ui.footer import Footer
from nomadlab.ui.logs.dialogs import OpenLogScreen
from nomadlab.ui.logs.view import LogView
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

STATE_STYLE = {
    LogState.LIVE: "green",
    LogState.WAITING: "yellow",
    LogState.CONNECTING: "cyan",
    LogState.ERROR: "bold red",
    LogState.STOPPED: "dim",
}


def alert_line_seq(buffer: LogBuffer, alert: Alert) -> int | None:
    """The buffered line an alert fired on: its recorded seq when that line still reads
    the same, else the last line with the alert's text received by the alert's time."""
    if not alert.line:
        return None
    seq = alert.extra.get("seq")
    position = buffer.index_of(seq) if isinstance(seq, int) else None
    if position is not None and clean_text(buffer[position].text, LINE_LIMIT) == alert.line:
        return buffer[position].seq
    found = None
    for line in buffer:
        if line.received > alert.time + 1.0:
            break
        if clean_text(line.text, LINE_LIMIT) == alert.line:
            found = line.seq
    return found


class LogPanel(Vertical):
    """One viewer with its title (log, file) and subtitle (follow state, queries)."""

    def __init__(self, index: int) -> None:
        super().__init__(classes="log-panel", id=f"log-panel-{index}")
        self.index = index
        self.view = LogView(id=f"log-view-{index}")

    def compose(self) -> ComposeResult:
        yield self.view


class LogsScreen(Screen[None]):
    TITLE = "Logs"
    BINDINGS = [
        Binding("slash", "query('search')", "Search"),
        Binding("ampersand", "query('filter')", "Filter"),
        Binding("escape", "clear_query", "Clear", show=False),
        Binding("v", "split", "Split"),
        Binding("o", "open_log", "Open host:path"),
        Binding("x", "close_log", "Close", show=False),
        Binding("f", "follow", "Follow", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.seen: dict[str, int] = {}  # log -> last line seq the user has seen
        self.shown: list[str | None] = [None, None]
        self.active = 0
        self.query_kind = "search"
        self._list_pending = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Logs")
        with Horizontal(id="logs-main"):
            table: DataTable[Text] = DataTable(cursor_type="row", id="log-list")
            yield table
            with Horizontal(id="log-viewers"):
                yield LogPanel(0)
                yield LogPanel(1)
        yield Input(id="log-query", classes="hidden")
        yield Footer()

    def panel(self, index: int) -> LogPanel:
        return self.query_one(f"#log-panel-{index}", LogPanel)

    @property
    def view(self) -> LogView:
        return self.panel(self.active).view

    def on_mount(self) -> None:
        table = self.query_one("#log-list", DataTable)
        table.add_column("Log", key="name")
        table.add_column("State", key="state")
        table.add_column("New", key="new")
        table.border_title = "Logs"
        self.panel(1).display = False
        self.services.log_bridge.subscribe(self._on_lines, self._on_status)
        self.refresh_list()
        names = self.names()
        first = self.services.log_bridge.last_active or (names[0] if names else None)
        if first is not None:
            self.show_log(first, 0)
        self._title(0)
        self.set_interval(1.0, self.refresh_list)
        if names:
            self.view.focus()
        else:
            table.focus()

    def on_unmount(self) -> None:
        self.services.log_bridge.unsubscribe(self._on_lines, self._on_status)

    def on_screen_resume(self) -> None:
        for index in (0, 1):
            self.panel(index).view.catch_up()
        self.refresh_list()

    # ------------------------------------------------------------------ data

    def names(self) -> list[str]:
        logs = self.services.logs
        return list(logs.statuses) if logs is not None else []

    def status(self, name: str) -> LogStatus | None:
        logs = self.services.logs
        return logs.statuses.get(name) if logs is not None else None

    def show_log(self, name: str, index: int | None = None, at: Alert | None = None) -> None:
        """Show log ``name`` in viewer ``index`` (the active one by default); with an
        alert ``at``, paused on the line that fired it (when still buffered)."""
        logs = self.services.logs
        if logs is None or name not in logs.tails:
            return
        index = self.active if index is None else index
        self.shown[index] = name
        buffer = logs.tails[name].buffer
        view = self.panel(index).view
        view.show(name, buffer)
        self.seen[name] = buffer.next_seq - 1
        if at is not None:
            seq = alert_line_seq(buffer, at)
            if seq is not None:
                view.pause_on(seq)
            else:
                self.notify("The alert's line is no longer in the buffer: showing the end.",
                            timeout=4)
        self._title(index)
        self.refresh_list()
        if at is not None:
            view.focus()

    def _on_lines(self, name: str, lines: list[LogLine]) -> None:
        for index, shown in enumerate(self.shown):
            if shown == name:
                panel = self.panel(index)
                panel.view.add_lines(lines)
                if panel.view.follow and lines:
                    self.seen[name] = lines[-1].seq
        if not self._list_pending:
            self._list_pending = True
            self.set_timer(0.5, self.refresh_list)

    def _on_status(self, status: LogStatus) -> None:
        for index, shown in enumerate(self.shown):
            if shown == status.name:
                self._title(index)
        self.refresh_list()

    def _title(self, index: int) -> None:
        panel = self.panel(index)
        name = self.shown[index]
        status = self.status(name) if name else None
        if status is None:
            panel.border_title = "no log: configure [[logs]] or press o to open host:path"
            panel.border_subtitle = ""
            return
        title = Text()
        title.append_text(render.safe(status.name, "bold", 40))
        title.append(" · ")
        title.append_text(render.safe(f"{status.host}:{status.file or status.path}", "", 80))
        if status.state is not LogState.LIVE:
            title.append(" · ")
            title.append(str(status.state), style=STATE_STYLE.get(status.state, ""))
            if status.error:
                title.append(": ")
                title.append_text(render.safe(status.error, "red", 60))
        panel.border_title = title
        panel.border_subtitle = panel.view.header()

    def on_log_view_changed(self, event: LogView.Changed) -> None:
        for index in (0, 1):
            if self.panel(index).view is event.control:
                self._title(index)

    def refresh_list(self) -> None:
        self._list_pending = False
        if not self.is_current:
            return
        table = self.query_one("#log-list", DataTable)
        logs = self.services.logs
        rows = []
        for name in self.names():
            status = self.status(name)
            if status is None or logs is None:
                continue
            last = logs.tails[name].buffer.next_seq - 1
            new = max(0, last - self.seen.get(name, 0))
            marker = "▶ " if name in self.shown else "  "
            rows.append((name, Text(marker) + render.safe(name, "bold", 28),
                         Text(str(status.state), style=STATE_STYLE.get(status.state, "")),
                         Text(f"+{new:,}" if new else "", style="bold cyan")))
        keys = [str(k.value) for k in table.rows]
        if keys != [r[0] for r in rows]:
            keep = table.cursor_row
            table.clear()
            for name, *cells in rows:
                table.add_row(*cells, key=name)
            if rows:
                table.move_cursor(row=min(keep, len(rows) - 1), animate=False)
        else:
            for name, *cells in rows:
                for column, cell in zip(("name", "state", "new"), cells, strict=True):
                    table.update_cell(name, column, cell)

    # ------------------------------------------------------------------ events

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "log-list" and event.row_key.value is not None:
            self.show_log(str(event.row_key.value))
            self.view.focus()

    def on_descendant_focus(self, event: object) -> None:
        self._track_focus()

    def _track_focus(self) -> None:
        focused = self.focused
        for index in (0, 1):
            if focused is self.panel(index).view:
                self.active = index

    # ------------------------------------------------------------------ actions

    def action_query(self, kind: str) -> None:
        self.query_kind = kind
        box = self.query_one("#log-query", Input)
        box.placeholder = ("search (regex; n/N next/previous)" if kind == "search"
                           else "filter: show only lines matching (regex)")
        box.value = self.view.search_text if kind == "search" else self.view.filter_text
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "log-query":
            return
        if self.query_kind == "search":
            self.view.set_search(event.value)
        else:
            self.view.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-query":
            return
        event.input.add_class("hidden")
        self.view.focus()
        if self.query_kind == "search" and event.value:
            self.view.action_next_match(-1 if self.view.follow else 1)

    def action_clear_query(self) -> None:
        box = self.query_one("#log-query", Input)
        if not box.has_class("hidden"):
            box.add_class("hidden")
            self.view.focus()
            return
        if self.view.search_text or self.view.filter_text:
            self.view.set_search("")
            self.view.set_filter("")

    def action_follow(self) -> None:
        self.view.resume()

    def action_split(self) -> None:
        second = self.panel(1)
        if second.display:
            second.display = False
            self.shown[1] = None
            self.active = 0
            self.panel(0).view.focus()
            return
        second.display = True
        names = self.names()
        other = next((n for n in names if n != self.shown[0]), self.shown[0])
        if other is not None:
            self.show_log(other, 1)
        self._title(1)
        self.active = 1
        second.view.focus()

    def action_open_log(self) -> None:
        if self.services.logs is None:
            return

        def opened(spec: tuple[str, str] | None) -> None:
            if spec is None or self.services.logs is None:
                return
            host, path = spec
            try:
                name = self.services.logs.open_adhoc(host, path)
            except (KeyError, ValueError) as exc:
                self.notify(render.clean(str(exc)), severity="error")
                return
            self.refresh_list()
            self.show_log(name)
            self.view.focus()

        self.app.push_screen(OpenLogScreen(self.services), opened)

    def action_close_log(self) -> None:
        self._track_focus()
        logs = self.services.logs
        name = self.shown[self.active]
        if logs is None or name is None:
            return
        configured = {log.name for log in self.services.config.logs}
        if name in configured:
            self.notify("Configured logs stay; remove them from the config.", timeout=3)
            return
        logs.close(name)
        closed = self.active
        self.shown[closed] = None
        self.panel(closed).view.show(None, None)
        if self.panel(1).display:  # split: the other log takes the whole width
            keep = self.shown[1 - closed]
            self.panel(1).display = False
            self.shown[1] = None
            self.panel(1).view.show(None, None)
            self.active = 0
            if keep is not None:
                self.show_log(keep, 0)
        else:  # one pane: the next log, if there is one
            rest = [n for n in self.names() if n != name]
            if rest:
                self.show_log(rest[0], 0)
        self._title(0)
        self._title(1)
        self.panel(0).view.focus()
        self.refresh_list()
