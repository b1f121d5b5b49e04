"""The week (``w`` on the focus and today screens): focus hours per day against plan as
a bar chart, the figures of ``nomadlab report week``, and the retro (``r``: what
worked, what did not, what to change), with last week's "change" shown again."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from nomadlab.core.durations import total
from nomadlab.core.focus import RETRO_PROMPTS, Days, FocusService
from nomadlab.core.focus.report import DayRow, WeekReport, energy_line, week_report
from nomadlab.ui import render
from nomadlab.ui.focus.dialogs import FormDialog
from nomadlab.ui.focus.text import focus_of, lead
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar


class WeekChart(Widget):
    """One bar per day: focus hours, with the plan marked."""

    DEFAULT_CSS = """
    WeekChart { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[DayRow] = []
        self.today: object = None

    def show(self, rows: list[DayRow], today: object) -> None:
        self.rows = rows
        self.today = today
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows) + 1

    def render(self) -> Text:
        width = self.size.width
        label_width, figures_width = 7, 15
        bar_width = max(5, width - label_width - figures_width - 2)
        scale = max([max(r.focus, r.plan) for r in self.rows] + [3600.0])
        out = Text()
        out.append(" " * label_width + "focus per day, ", style="dim")
        out.append("│", style="yellow")
        out.append(" the plan", style="dim")
        for row in self.rows:
            out.append("\n")
            style = "bold" if row.day == self.today else ""
            out.append(f"{row.day:%a %d} ", style=style or "dim")
            filled = row.focus / scale * bar_width
            plan_at = min(bar_width - 1, int(row.plan / scale * bar_width)) if row.plan else None
            colour = "green" if row.plan and row.focus >= row.plan else "cyan"
            bar = render.bar(row.focus / scale, bar_width, colour)
            if plan_at is not None and plan_at >= int(filled):
                bar = bar[:plan_at] + Text("│", style="yellow") + bar[plan_at + 1:]
            out.append_text(bar)
            out.append(f" {total(row.focus):>6}/{total(row.plan):<6}",
                       style=style)
        return out


def stats_text(report: WeekReport) -> Text:
    """The week's figures, one short line each (cut, never wrapped)."""
    rows: list[tuple[str, str]] = []
    kinds = " · ".join(f"{k} {total(v)}" for k, v in report.by_kind.items() if v)
    rows.append(("Kinds", kinds or "-"))
    ended = [f"{report.completed} done"]
    if report.finished_early:
        ended.append(f"{report.finished_early} early")
    dropped = f" ({report.abandoned} abandoned, not counted)" if report.abandoned else ""
    rows.append(("Sessions", f"{report.sessions}: {', '.join(ended)}{dropped}"))
    rows.append(("Interrupted", f"{report.interruptions} times"))
    if report.longest_day is not None:
        longest = f"{total(report.longest)} {report.longest_day:%a}"
        if report.longest_purpose:
            longest += f" · {report.longest_purpose}"
        rows.append(("Longest", longest))
    if report.board is not None:
        cards = f"{report.board['moves']} moves"
        if report.board.get("finished") is not None:
            cards += f", {report.board['finished']} finished"
        into = report.board.get("into") or {}
        if into:
            cards += " · " + ", ".join(f"{c} +{n}" for c, n in into.items())
        rows.append(("Cards", cards))
    rows.append(("Runs", f"{report.runs_finished} finished, {report.runs_failed} failed"))
    if report.papers is not None:
        rows.append(("Papers", f"{report.papers['started']}/{report.papers['cap']} started, "
                               f"{report.papers['read']} read"))
    if report.gpu:
        totals = report.gpu_totals()
        gpu = f"{totals['used_hours']:.1f}h used, {totals['idle_hours']:.1f}h idle"
        if totals["cost"]:
            gpu += f", idle cost {totals['idle_cost']:.2f}"
        rows.append(("GPU", gpu))
        energy = energy_line(report.gpu)
        if energy:
            rows.append(("Energy", energy))
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, (label, value) in enumerate(rows):
        if index:
            text.append("\n")
        text.append(f"{label:<12}", style="bold")
        text.append_text(render.safe(value))
    return text


class WeekScreen(Screen[None]):
    TITLE = "Week"
    DEFAULT_CSS = """
    WeekScreen #week-head { height: auto; padding: 0 1; margin-top: 1; }
    WeekScreen #week-body { height: auto; }
    WeekScreen #week-chart-box {
        width: 1fr;
        height: auto;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    WeekScreen #week-stats {
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        height: auto;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    WeekScreen #week-retro {
        height: auto;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("left,h", "shift(-1)", "Prev week"),
        Binding("right,l", "shift(1)", "Next week"),
        Binding("r", "retro", "Retro"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, services: Services, week: str | None = None) -> None:
        super().__init__()
        self.services = services
        self.week = week or self.focus_service.week_of()
        self.report: WeekReport | None = None

    @property
    def focus_service(self) -> FocusService:
        return focus_of(self.services)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Week")
        yield Static("", id="week-head", markup=False)
        with Horizontal(id="week-body"):
            chart_box = Horizontal(WeekChart(id="week-chart"), id="week-chart-box")
            chart_box.border_title = "Focus"
            yield chart_box
            stats = Static("", id="week-stats", markup=False)
            stats.border_title = "The week"
            yield stats
        retro = Static("", id="week-retro", markup=False)
        retro.border_title = "Retro"
        yield retro
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(30.0, self.tick)

    def on_screen_resume(self) -> None:
        self.reload()

    def tick(self) -> None:
        if self.is_current:
            self.reload()

    def reload(self) -> None:
        service = self.focus_service
        now = self.services.clock.time()
        report = week_report(service, self.week, now)
        self.report = report
        head = lead(report.title, "bold")
        head.append(f"  {total(report.focus)} focus of {total(report.plan)} "
                    "planned")
        if self.week == service.week_of(now):
            head.append("  (this week)", style="dim")
        self.query_one("#week-head", Static).update(head)
        self.query_one(WeekChart).show(report.days, service.today(now))
        self.query_one("#week-stats", Static).update(stats_text(report))
        retro = Text()
        written = report.retro is not None and not report.retro.empty
        if written and report.retro is not None:
            for index, (key, prompt) in enumerate(RETRO_PROMPTS):
                if index:
                    retro.append("\n")
                retro.append(f"{prompt} ", style="bold")
                answer = getattr(report.retro, key)
                retro.append_text(render.safe(answer) if answer else Text("-", style="dim"))
        else:
            due = self.week == service.week_of(now) and service.retro_due(now)
            retro.append("Not written yet. ", style="bold yellow" if due else "dim")
            retro.append(f"r: {RETRO_PROMPTS[0][1].lower()} {RETRO_PROMPTS[1][1].lower()} "
                         f"{RETRO_PROMPTS[2][1].lower()}", style="dim")
            if due:
                retro.append(f" (due from {service.settings.retro_day.capitalize()})",
                             style="yellow")
        previous = report.previous_retro
        if previous is not None and previous.change:
            retro.append("\nLast week you meant to change: ", style="bold")
            retro.append_text(render.safe(previous.change, "italic"))
        self.query_one("#week-retro", Static).update(retro)

    def action_shift(self, by: int) -> None:
        self.week = Days.shift_week(self.week, by)
        self.reload()

    def action_retro(self) -> None:
        service = self.focus_service
        old = service.retro(self.week)
        week = self.week

        def done(values: list[str] | None) -> None:
            if values is not None:
                service.set_retro(week, *values)
                self.reload()

        fields = [(prompt, getattr(old, key) if old else "", "")
                  for key, prompt in RETRO_PROMPTS]
        self.app.push_screen(FormDialog(f"Retro of {week}", fields,
                                        "Stored with the week and shown again next week."),
                             done)

    def action_back(self) -> None:
        self.app.pop_screen()
