"""Screen 5, focus: a large countdown, what it is for, the presets, today against plan.

Keys start, pause and resume, extend, finish or abandon the session and log an
interruption (one key; the note is optional and the timer goes on). ``t`` opens the
day (yesterday, today's planned blocks, the note), ``w`` the week (a bar chart of
focus per day, the figures of the week report, the retro).

What is shown is recomputed from the store every second: the countdown is the same
in every open TUI and in ``nomadlab focus status``.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Digits, Static

from nomadlab.core.durations import countdown, total
from nomadlab.core.focus import (
    KIND_LABELS,
    AlreadyRunning,
    FocusError,
    FocusService,
    Session,
)
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.focus.dialogs import FormDialog
from nomadlab.ui.focus.text import (
    KIND_STYLE,
    block_text,
    focus_of,
    lead,
    next_block,
    total_text,
)
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

FOR_HELP = "For: a card id (42), a paper (paper:7) or a few words; empty: nothing."


class FocusScreen(Screen[None]):
    TITLE = "Focus"
    DEFAULT_CSS = """
    FocusScreen #focus-body { height: 1fr; }
    FocusScreen #focus-timer {
        width: 2fr;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 2;
    }
    FocusScreen #focus-side {
        width: 1fr;
        min-width: 30;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    FocusScreen #focus-timer > Static { height: auto; }
    FocusScreen #focus-state { margin-top: 1; }
    FocusScreen #focus-digits { width: auto; margin: 1 0; color: $accent; }
    FocusScreen #focus-digits.idle { color: $text-muted; }
    FocusScreen #focus-meta { margin-top: 1; color: $text-muted; }
    FocusScreen #focus-log { margin-top: 1; }
    FocusScreen #focus-sessions { margin-top: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    FocusScreen #focus-plan { text-wrap: nowrap; text-overflow: ellipsis; }
    FocusScreen #focus-side > Static { height: auto; }
    FocusScreen #focus-presets { height: auto; max-height: 10; margin: 1 0; }
    """
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("p", "pause", "Pause/resume"),
        Binding("i", "interrupt", "Interruption"),
        Binding("e", "extend", "+15m"),
        Binding("f", "finish", "Finish"),
        Binding("a", "abandon", "Abandon"),
        Binding("t", "today", "Today"),
        Binding("w", "week", "Week"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    @property
    def focus_service(self) -> FocusService:
        return focus_of(self.services)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Focus")
        with Horizontal(id="focus-body"):
            with Vertical(id="focus-timer") as timer:
                timer.border_title = "Timer"
                yield Static("", id="focus-state", markup=False)
                yield Digits("", id="focus-digits")
                yield Static("", id="focus-progress", markup=False)
                yield Static("", id="focus-purpose", markup=False)
                yield Static("", id="focus-meta", markup=False)
                yield Static("", id="focus-log", markup=False)
                yield Static("", id="focus-sessions", markup=False)
            with Vertical(id="focus-side") as side:
                side.border_title = "Today"
                yield Static("", id="focus-today", markup=False)
                table: DataTable[Text] = DataTable(id="focus-presets", cursor_type="row",
                                                   show_header=False)
                yield table
                yield Static("", id="focus-plan", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#focus-presets", DataTable)
        table.add_column("preset", key="name")
        table.add_column("length", key="length")
        for preset in self.focus_service.presets:
            name = render.safe(preset.name, KIND_STYLE.get(preset.kind, "bold"), 16)
            if preset.kind != preset.name:
                name.append(f" {preset.kind}", style="dim")
            table.add_row(name, Text(total(preset.minutes * 60)), key=preset.name)
        table.focus()
        self.set_interval(1.0, self.refresh_view)
        self.refresh_view()
        self.call_after_refresh(self.refresh_view)  # the progress bar knows its width now

    def on_screen_resume(self) -> None:
        self.refresh_view()

    # ------------------------------------------------------------------ view

    def _selected_preset(self) -> str | None:
        presets = self.focus_service.presets
        if not presets:
            return None
        table = self.query_one("#focus-presets", DataTable)
        return presets[min(table.cursor_row, len(presets) - 1)].name

    def refresh_view(self) -> None:
        if not self.is_current:
            return
        service = self.focus_service
        now = self.services.clock.time()
        session = service.current(now)
        self._timer(service, session, now)
        self._side(service, now)

    def _timer(self, service: FocusService, session: Session | None, now: float) -> None:
        state = self.query_one("#focus-state", Static)
        digits = self.query_one("#focus-digits", Digits)
        progress = self.query_one("#focus-progress", Static)
        width = max(10, progress.size.width or 40)
        if session is None:
            name = self._selected_preset()
            preset = service.preset(name) if name else None
            state.update(Text("No session running", style="bold"))
            digits.update(countdown(preset.minutes * 60) if preset else "0:00")
            digits.set_class(True, "idle")
            progress.update(render.bar(0.0, width, "grey50"))
            self.query_one("#focus-purpose", Static).update(Text(
                "s: start the highlighted preset · t: plan the day · w: the week",
                style="dim italic"))
            self.query_one("#focus-meta", Static).update(self._last_text(service))
            self.query_one("#focus-log", Static).update("")
            return
        head = Text()
        head.append(KIND_LABELS.get(session.kind, session.kind).upper(),
                    style=KIND_STYLE.get(session.kind, "bold"))
        if session.preset != session.kind:
            head.append(f" · {session.preset}", style="bold")
        head.append(" · ")
        head.append(session.state, style="yellow" if session.state == "paused" else "green")
        if session.kind == "deep" and session.state == "running":
            head.append(" · informational alerts held", style="dim")
        state.update(head)
        digits.update(countdown(session.remaining(now)))
        digits.set_class(session.state == "paused", "idle")
        done = session.focus_seconds(now) / session.length if session.length else 0.0
        progress.update(render.bar(done, width, KIND_STYLE.get(session.kind, "cyan")
                                   .replace("bold ", "")))
        purpose = lead("for ", "dim")
        purpose.append_text(render.safe(session.purpose, "bold") if session.purpose
                            else Text("(nothing named)", style="dim italic"))
        self.query_one("#focus-purpose", Static).update(purpose)
        days = service.days
        meta = [f"started {days.clock_text(session.started)}"]
        due = session.due()
        if due is not None:
            meta.append(f"ends {days.clock_text(due)}")
        if session.extended:
            meta.append(f"+{total(session.extended)}")
        paused = session.paused_seconds(now)
        if paused:
            meta.append(f"paused {total(paused)}")
        count = len(session.interruptions)
        meta.append(f"{count} interruption{'s' if count != 1 else ''}")
        self.query_one("#focus-meta", Static).update(Text(" · ".join(meta)))
        log = Text()
        for interruption in session.interruptions[-3:]:
            log.append(days.clock_text(interruption.time), style="dim")
            log.append("  interrupted", style="yellow")
            if interruption.note:
                log.append(": ")
                log.append_text(render.safe(interruption.note, "", 60))
            log.append("\n")
        log.rstrip()
        self.query_one("#focus-log", Static).update(log)

    def _last_text(self, service: FocusService) -> Text:
        last = service.last_ended()
        if last is None or last.ended is None:
            return Text("")
        text = Text(f"last: {last.preset} {last.state} at {service.days.clock_text(last.ended)}"
                    f", {total(last.focus_seconds(last.ended))}")
        if last.purpose:
            text.append(" for ")
            text.append_text(render.safe(last.purpose, "", 50))
        return text

    def _sessions_text(self, service: FocusService, sessions: list[Session],
                       now: float) -> Text:
        text = Text()
        if not sessions:
            return text
        text.append("Today's sessions", style="bold underline")
        for session in sessions:
            text.append("\n")
            text.append(service.days.clock_text(session.started), style="dim")
            text.append(" ")
            text.append(f"{session.preset:<9}", style=KIND_STYLE.get(session.kind, ""))
            state_style = {"running": "green", "paused": "yellow", "abandoned": "dim"}
            text.append(f"{session.state:<10}", style=state_style.get(session.state, ""))
            text.append(f"{total(session.focus_seconds(now)):>6}")
            if session.interruptions:
                text.append(f"  {len(session.interruptions)}×", style="yellow")
            if session.purpose:
                text.append("  ")
                text.append_text(render.safe(session.purpose, "dim"))
        return text

    def _side(self, service: FocusService, now: float) -> None:
        day = service.today(now)
        blocks = service.blocks(day)
        sessions = service.sessions_between(*service.days.day_range(day))
        today = total_text(service.day_focus(day, now), service.plan_seconds(day, blocks), 10)
        interruptions = sum(len(s.interruptions) for s in sessions)
        counted = len(service.counted(sessions))  # abandoned ones do not count
        today.append(f"\n{counted} session{'s' if counted != 1 else ''} · "
                     f"{interruptions} interruption{'s' if interruptions != 1 else ''}",
                     style="dim")
        self.query_one("#focus-today", Static).update(today)
        self.query_one("#focus-sessions", Static).update(self._sessions_text(service, sessions,
                                                                              now))
        local = service.days.local(now)
        minute = local.hour * 60 + local.minute
        if minute < service.days.starts:
            minute += 24 * 60
        plan = Text(no_wrap=True, overflow="ellipsis")
        plan.append("Plan", style="bold underline")
        if not blocks:
            plan.append("\nnothing planned: t", style="dim")
        upcoming = next_block(blocks, minute)
        for block in blocks:
            plan.append("\n")
            marker = "▶ " if block is upcoming else "  "
            line = block_text(block)
            if block.end <= minute:
                line.stylize("dim")
            plan.append(marker, style="bold magenta")
            plan.append_text(line)
        self.query_one("#focus-plan", Static).update(plan)

    # ------------------------------------------------------------------ actions

    def _run(self, step: str) -> Session | None:
        service = self.focus_service
        try:
            if step == "pause":
                session = service.toggle_pause()
            elif step == "extend":
                session = service.extend()
            elif step == "finish":
                session = service.finish()
            else:
                session = service.abandon()
        except FocusError as exc:
            self.notify(str(exc), severity="warning", timeout=4)
            return None
        self.refresh_view()
        return session

    def action_start(self) -> None:
        self.start_dialog(self._selected_preset() or "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.start_dialog(str(event.row_key.value or ""))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_view()

    def start_dialog(self, preset: str) -> None:
        service = self.focus_service
        now = self.services.clock.time()
        running = service.current(now)
        if running is not None:  # say so before asking anything
            self.notify(str(AlreadyRunning(running, now)), title="Already running",
                        severity="warning", timeout=6)
            return
        names = ", ".join(f"{p.name} ({total(p.minutes * 60)})" for p in service.presets)
        # What it is for first: the cursor starts there and tab goes on to the preset
        # (already filled in from the highlighted row), so a card number typed at once
        # never lands in the minutes.
        dialog = FormDialog("Start a focus session", [
            ("For", "", "42, paper:7 or a few words"),
            ("Preset or minutes", preset, "sprint, deep, pomodoro or minutes"),
        ], f"Presets: {names}.\n{FOR_HELP}", focus=0)
        self.app.push_screen(dialog, self._started)

    def _started(self, values: list[str] | None) -> None:
        if values is None:
            return
        purpose, what = values
        try:
            session = self.focus_service.start_session(what or None, purpose)
        except AlreadyRunning as exc:
            self.notify(str(exc), title="Already running", severity="warning", timeout=6)
            return
        except FocusError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return
        self.notify(f"{session.preset}: {countdown(session.length)} started.", timeout=3)
        self.refresh_view()

    def action_pause(self) -> None:
        session = self._run("pause")
        if session is not None:
            self.notify(f"{session.preset} {session.state}.", timeout=2)

    def action_extend(self) -> None:
        session = self._run("extend")
        if session is not None:
            self.notify(f"{session.preset}: +15m.", timeout=2)

    def action_finish(self) -> None:
        session = self._run("finish")
        if session is not None and session.ended is not None:
            self.notify(f"{session.preset} finished: "
                        f"{total(session.focus_seconds(session.ended))} of focus.",
                        timeout=4)

    def action_abandon(self) -> None:
        session = self.focus_service.current()
        if session is None:
            self.notify("no focus session is running", severity="warning", timeout=3)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                ended = self._run("abandon")
                if ended is not None:
                    self.notify(f"{ended.preset} abandoned; its time does not count.",
                                timeout=4)

        self.app.push_screen(ConfirmScreen(f"Abandon this {session.preset} session?",
                                             "Its time will not count as focus."), answered)

    def action_interrupt(self) -> None:
        try:
            interruption = self.focus_service.interrupt()
        except FocusError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.refresh_view()

        def noted(values: list[str] | None) -> None:
            if values and values[0].strip():
                self.focus_service.note_interruption(interruption.id, values[0])
                self.refresh_view()

        self.app.push_screen(FormDialog("Interruption logged (the timer goes on)", [
            ("Note (optional)", "", "what interrupted you"),
        ]), noted)

    def action_today(self) -> None:
        from nomadlab.ui.focus.today import TodayScreen

        self.app.push_screen(TodayScreen(self.services))

    def action_week(self) -> None:
        from nomadlab.ui.focus.week import WeekScreen

        self.app.push_screen(WeekScreen(self.services))
