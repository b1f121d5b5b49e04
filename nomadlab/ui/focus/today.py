"""The day (``t`` on the focus screen): yesterday in a few lines, today's planned blocks
on a timeline, the day's note. Blocks are added, edited, moved and resized with keys;
``s`` starts the highlighted block's timer with its kind, length and purpose."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from nomadlab.core.config import FOCUS_KINDS
from nomadlab.core.durations import countdown, total
from nomadlab.core.focus import (
    STEP_MINUTES,
    AlreadyRunning,
    Block,
    Days,
    FocusError,
    FocusService,
    minute_text,
)
from nomadlab.core.focus.report import day_summary
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.focus.dialogs import FormDialog
from nomadlab.ui.focus.text import KIND_STYLE, focus_of, lead
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

DAY = 24 * 60


class Timeline(Widget):
    """The day's blocks on a line of hours, with a marker at the current time."""

    DEFAULT_CSS = """
    Timeline { height: 3; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.blocks: list[Block] = []
        self._yesterday_at = 0.0
        self.now_minute: int | None = None
        self.selected: int | None = None
        self.day_starts = 4 * 60

    def show(self, blocks: list[Block], now_minute: int | None, selected: int | None,
             day_starts: int) -> None:
        self.blocks = blocks
        self.now_minute = now_minute
        self.selected = selected
        self.day_starts = day_starts
        self.refresh()

    def span(self) -> tuple[int, int]:
        """The hours shown: 06:00-22:00 at least, more when blocks lie outside."""
        low = max(self.day_starts, 6 * 60)
        high = min(self.day_starts + DAY, 22 * 60)
        for block in self.blocks:
            low = min(low, block.start)
            high = max(high, block.end)
        if self.now_minute is not None:
            low = min(low, self.now_minute)
            high = max(high, self.now_minute + 1)
        return low // 60 * 60, math.ceil(high / 60) * 60

    def render(self) -> Text:
        width = max(10, self.size.width - 2)
        low, high = self.span()
        per_cell = (high - low) / width
        marker = Text(" " * width)
        if self.now_minute is not None and low <= self.now_minute < high:
            at = min(width - 1, int((self.now_minute - low) / per_cell))
            marker = Text(" " * at + "▼ " + minute_text(self.now_minute), style="bold yellow")
            marker.truncate(width)
        strip = Text()
        for cell in range(width):
            minute = low + (cell + 0.5) * per_cell
            block = next((b for b in self.blocks if b.start <= minute < b.end), None)
            if block is None:
                strip.append("·", style="grey35")
            else:
                style = KIND_STYLE.get(block.kind, "bold").replace("bold ", "")
                if block.id == self.selected:
                    style = f"bold {style} underline"
                strip.append("█" if block.id == self.selected else "▆", style=style)
        hours = (high - low) // 60
        cells_per_hour = width / max(1, hours)
        step = max(1, math.ceil(4 / cells_per_hour))
        labels = [" "] * width
        for hour in range(0, hours + 1, step):
            at = int(hour * cells_per_hour)
            text = minute_text(low + hour * 60)[:2]
            if at + len(text) <= width:
                labels[at:at + len(text)] = list(text)
        out = Text()
        out.append_text(marker)
        out.append("\n")
        out.append_text(strip)
        out.append("\n")
        out.append("".join(labels), style="dim")
        return out


class TodayScreen(Screen[None]):
    TITLE = "Today"
    DEFAULT_CSS = """
    TodayScreen #today-head, TodayScreen #today-yesterday, TodayScreen #today-note {
        height: auto;
        padding: 0 1;
    }
    TodayScreen #today-head { margin-top: 1; }
    TodayScreen #today-yesterday { margin: 1 0; }
    TodayScreen #today-blocks {
        height: 1fr;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
    }
    TodayScreen #today-blocks:focus { border: round $accent; }
    TodayScreen #today-note { margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("a", "add", "Add block"),
        Binding("enter,e", "edit", "Edit"),
        Binding("s", "start", "Start block"),
        Binding("K,shift+up", f"move(-{STEP_MINUTES})", "Earlier"),
        Binding("J,shift+down", f"move({STEP_MINUTES})", "Later"),
        Binding("plus,shift+right", f"resize({STEP_MINUTES})", "Longer"),
        Binding("minus,shift+left", f"resize(-{STEP_MINUTES})", "Shorter"),
        Binding("d,delete", "delete", "Delete"),
        Binding("n", "note", "Note"),
        Binding("w", "week", "Week"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.blocks: list[Block] = []

    @property
    def focus_service(self) -> FocusService:
        return focus_of(self.services)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Today")
        yield Static("", id="today-head", markup=False)
        yield Static("", id="today-yesterday", markup=False)
        yield Timeline(id="today-timeline")
        table: DataTable[Text] = DataTable(id="today-blocks", cursor_type="row")
        table.border_title = "Planned blocks"
        yield table
        yield Static("", id="today-note", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#today-blocks", DataTable)
        table.add_column("When", key="when", width=11)
        table.add_column("Kind", key="kind", width=8)
        table.add_column("For", key="for")
        table.add_column("", key="state")
        table.focus()
        self.reload()
        self.set_interval(1.0, self.tick)

    def on_screen_resume(self) -> None:
        self.reload()

    def _minute(self, service: FocusService, now: float) -> int:
        local = service.days.local(now)
        minute = local.hour * 60 + local.minute
        return minute + DAY if minute < service.days.starts else minute

    def selected(self) -> Block | None:
        if not self.blocks:
            return None
        table = self.query_one("#today-blocks", DataTable)
        return self.blocks[min(table.cursor_row, len(self.blocks) - 1)]

    def tick(self) -> None:
        if self.is_current:
            self.reload(light=True)
            # Yesterday does not change by the second: once a minute is enough.
            if self.services.clock.time() - self._yesterday_at >= 60:
                self._yesterday(self.focus_service, self.services.clock.time())

    def reload(self, select: int | None = None, *, light: bool = False) -> None:
        """Rebuild what changed; ``light`` leaves yesterday's summary as it is."""
        service = self.focus_service
        now = self.services.clock.time()
        day = service.today(now)
        selected = self.selected()
        keep = select if select is not None else (selected.id if selected is not None else None)
        self.blocks = service.blocks(day)
        done = service.block_sessions(day)
        minute = self._minute(service, now)
        table = self.query_one("#today-blocks", DataTable)
        rows: list[tuple[str, list[Text]]] = []
        for block in self.blocks:
            sessions = done.get(block.id, [])
            if any(s.open for s in sessions):
                state = Text("running", style="bold green")
            elif sessions:
                state = Text(f"done {total(service.focus_seconds(sessions, now))}",
                             style="green")
            elif block.start <= minute < block.end:
                state = Text("now", style="bold yellow")
            elif block.end <= minute:
                state = Text("missed", style="dim")
            else:
                state = Text("")
            rows.append((str(block.id), [
                Text(block.label, style="bold"),
                Text(block.kind, style=KIND_STYLE.get(block.kind, "")),
                render.safe(block.purpose) if block.purpose else Text("-", style="dim"),
                state,
            ]))
        shown = [(str(k.value), [c.plain for c in table.get_row(k)]) for k in table.rows]
        if shown != [(k, [c.plain for c in cells]) for k, cells in rows]:
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if keep is not None and str(keep) in [k for k, _ in rows]:
                table.move_cursor(row=table.get_row_index(str(keep)), animate=False)
        if not self.blocks:
            table.border_subtitle = "a: add a block (e.g. 07:00-11:00 deep)"
        else:
            table.border_subtitle = f"{len(self.blocks)} planned · " \
                f"{total(service.plan_seconds(day, self.blocks))}"
        chosen = self.selected()
        self.query_one(Timeline).show(self.blocks, minute, chosen.id if chosen else None,
                                      service.days.starts)
        head = Text()
        head.append(f"{day:%A %d %B %Y}", style="bold")
        head.append("  focus ", style="dim")
        head.append(total(service.day_focus(day, now)), style="bold")
        head.append(f" of {total(service.plan_seconds(day, self.blocks))} planned")
        session = service.current(now)
        if session is not None:
            head.append("  ·  ", style="dim")
            head.append(f"{session.preset} {countdown(session.remaining(now))}",
                        style="bold magenta")
            if session.state == "paused":
                head.append(" paused", style="yellow")
        self.query_one("#today-head", Static).update(head)
        if not light:
            self._yesterday(service, now)
        note = service.note(day)
        text = lead("Note: ", "bold")
        if note:
            text.append_text(render.safe(note))
        else:
            text.append("n: a line for the day", style="dim italic")
        self.query_one("#today-note", Static).update(text)

    def _yesterday(self, service: FocusService, now: float) -> None:
        self._yesterday_at = now
        day = service.today(now)
        summary = day_summary(service, day.fromordinal(day.toordinal() - 1), now)
        lines = summary.lines()
        text = lead("Yesterday  ", "bold")
        text.append(lines[0])
        for line in lines[1:]:
            text.append("\n")
            text.append_text(render.safe(line))
        previous = service.retro(Days.shift_week(service.days.week_id(day), -1))
        if previous is not None and previous.change:
            text.append("\nThis week  ", style="bold")
            text.append_text(render.safe(f"change: {previous.change}", "italic"))
        if service.retro_due(now):
            text.append("\nRetro due  ", style="bold yellow")
            text.append("w, then r: what worked, what did not, what to change", style="yellow")
        self.query_one("#today-yesterday", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        chosen = self.selected()
        service = self.focus_service
        minute = self._minute(service, self.services.clock.time())
        self.query_one(Timeline).show(self.blocks, minute, chosen.id if chosen else None,
                                      service.days.starts)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    # ------------------------------------------------------------------ actions

    def _guard(self, step: str, block: Block | None, minutes: int = 0) -> None:
        if block is None:
            self.notify("no block here: a adds one", severity="warning", timeout=3)
            return
        service = self.focus_service
        try:
            if step == "move":
                moved = service.move_block(block.id, minutes)
            else:
                moved = service.resize_block(block.id, minutes)
        except FocusError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.reload(select=moved.id)

    def action_move(self, minutes: int) -> None:
        self._guard("move", self.selected(), minutes)

    def action_resize(self, minutes: int) -> None:
        self._guard("resize", self.selected(), minutes)

    def _default_span(self) -> str:
        service = self.focus_service
        now = self.services.clock.time()
        next_hour = math.ceil(self._minute(service, now) / 60) * 60
        start = max([b.end for b in self.blocks] + [next_hour])
        start = min(start, service.days.starts + DAY - 90)
        return f"{minute_text(start)}-{minute_text(start + 90)}"

    def action_add(self) -> None:
        self._block_dialog(None)

    def action_edit(self) -> None:
        block = self.selected()
        if block is None:
            self._block_dialog(None)
            return
        self._block_dialog(block)

    def _block_dialog(self, block: Block | None) -> None:
        fields = [
            ("When", block.label if block else self._default_span(), "07:00-11:00 or 19:00+60m"),
            ("Kind", block.kind if block else "deep", " | ".join(FOCUS_KINDS)),
            ("For", block.purpose_spec if block else "", "42, paper:7 or a few words"),
        ]
        title = "Edit the block" if block else "Plan a block"
        help_text = ("When: a span like 07:00-11:00 or 19:00+60m. Kind: "
                     f"{', '.join(FOCUS_KINDS)}. For: a card id (42), a paper (paper:7) or "
                     "a few words.")

        def done(values: list[str] | None) -> None:
            if values is None:
                return
            when, kind, purpose = values
            service = self.focus_service
            day = service.today()
            try:
                start, minutes = service.parse_span(when)
                kind = kind.strip().lower() or "deep"
                if block is None:
                    saved = service.add_block(day, start, minutes, kind, purpose)
                else:
                    saved = service.update_block(block.id, start=start, minutes=minutes,
                                                 kind=kind, purpose=purpose)
            except FocusError as exc:
                self.notify(str(exc), severity="error", timeout=5)
                return
            self.reload(select=saved.id)

        self.app.push_screen(FormDialog(title, fields, help_text), done)

    def action_delete(self) -> None:
        block = self.selected()
        if block is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.focus_service.delete_block(block.id)
                self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete {block.label} {block.kind}?"), answered)

    def action_start(self) -> None:
        block = self.selected()
        if block is None:
            self.notify("no block here: a adds one", severity="warning", timeout=3)
            return
        try:
            session = self.focus_service.start_block(block.id)
        except AlreadyRunning as exc:
            self.notify(str(exc), title="Already running", severity="warning", timeout=6)
            return
        except FocusError as exc:
            self.notify(str(exc), severity="error", timeout=5)
            return
        self.notify(f"{session.preset} started: {countdown(session.length)}"
                    + (f" for {render.clean(session.purpose, 60)}" if session.purpose else ""),
                    timeout=3)
        self.reload(select=block.id)

    def action_note(self) -> None:
        service = self.focus_service
        day = service.today()

        def done(values: list[str] | None) -> None:
            if values is not None:
                service.set_note(day, values[0])
                self.reload()

        self.app.push_screen(FormDialog(f"Note for {day:%A %d %B}", [
            ("Note", service.note(day), "one line for the day"),
        ]), done)

    def action_week(self) -> None:
        from nomadlab.ui.focus.week import WeekScreen

        self.app.push_screen(WeekScreen(self.services))

    def action_back(self) -> None:
        self.app.pop_screen()
