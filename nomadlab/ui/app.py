"""The nomadlab TUI: a workspace of panes, and each feature's full screen on its key
(the features and their keys: nomadlab/features.py)."""

from __future__ import annotations

import gc
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen

from nomadlab.core import lazyimport
from nomadlab.core.store import describe_error
from nomadlab.features import FEATURES
from nomadlab.ui import render
from nomadlab.ui.services import Services
from nomadlab.ui.textual_patches import apply as apply_textual_patches
from nomadlab.ui.textual_patches import css_is_current

if TYPE_CHECKING:
    from nomadlab.core.alerts import Alert

log = logging.getLogger(__name__)

# The modes: home, then each feature's full screen (nomadlab/features.py).
FEATURE_BY_MODE = {feature.key: feature for feature in FEATURES}
MODES = ("workspace", *FEATURE_BY_MODE)
MODE_TITLES = {"workspace": "Workspace", **{f.key: f.title for f in FEATURES}}
MODE_KEYS = {"workspace": "0", **{f.key: f.mode_key for f in FEATURES}}
BINDING_KEYS = {"!": "exclamation_mark"}  # a key as Textual names it
TOAST_SEVERITY: dict[str, SeverityLevel] = {"info": "information", "warning": "warning",
                                            "error": "error"}


def when_composed(screen: Screen[Any], callback: Callable[..., object],
                  *args: object) -> None:
    """Run ``callback(*args)`` once ``screen`` has composed its widgets.

    A mode's screen is created by ``switch_mode`` but composed later, by its own
    message loop (the first ``switch_mode`` of the app is not awaited, and awaiting a
    switch to the mode already current returns at once). A callback queued on the
    screen runs after its Compose and Mount, so "switch, then act on the screen" must
    go through here rather than call the screen directly.
    """
    screen.call_later(callback, *args)


FULL_GC_CHECK = 1.0  # s: how often the app asks whether a full collection is due
FULL_GC_EVERY = 10.0  # s between full collections (they ran 12-20 a minute by themselves)
FULL_GC_LATEST = 30.0  # s: made even while keys keep coming
KEY_QUIET = 1.0  # s without a key that make a quiet moment


class NomadApp(App[None]):
    CSS_PATH = "nomadlab.tcss"
    TITLE = "nomadlab"
    BINDINGS = [
        Binding("0", "open_mode('workspace')", "Home", show=False),
        *(Binding(BINDING_KEYS.get(f.mode_key, f.mode_key), f"open_mode('{f.key}')", f.title,
                  show=False) for f in FEATURES),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, services: Services) -> None:
        # Two fixes to Textual 8.2.8 (partial line updates cropped on both sides, keys
        # in order in inputs): installed here, when an app starts, not on import.
        apply_textual_patches(text_area=False)  # TextArea's: after the first frame
        # The first screen is the initial mode's own (Textual's DEFAULT_MODE, read once
        # by App.__init__): not a default screen switched away from, which made, styled
        # and restyled a screen more before the first frame.
        self.DEFAULT_MODE = services.initial_mode  # type: ignore[misc]
        super().__init__()
        for mode in MODES:
            self.add_mode(mode, partial(self._mode_screen, mode))
        self.services = services
        self._database_failed = False
        self._last_key = 0.0
        self._last_full_gc = time.monotonic()
        self._gc_threshold: tuple[int, int, int] | None = None  # to put back at exit

    def _handle_exception(self, error: Exception) -> None:
        """A full disk, a read-only or damaged database while the TUI runs: exit with
        the one clear line the CLI gives (core/store.describe_error), status 2, not a
        traceback. Anything else is Textual's to report, except what follows from the
        database error while the app stops (a screen whose mount it broke cannot be
        mounted on): that goes to the debug log."""
        if isinstance(error, sqlite3.Error):
            path = self.services.store.path
            self._database_failed = True
            self._return_code = 2
            self.exit(return_code=2, message=f"nomadlab: {describe_error(error, path)}")
            return
        if self._database_failed:
            log.debug("after the database error: %r", error)
            return
        super()._handle_exception(error)

    # ------------------------------------------------------------------ screens

    def _make(self, mode: str) -> Screen[None]:
        # Each screen's module is imported when the screen is first shown.
        if mode == "workspace":
            from nomadlab.ui.workspace import WorkspaceScreen

            return WorkspaceScreen(self.services)
        feature = FEATURE_BY_MODE[mode]
        if feature.service is not None:
            self.services.install_features()  # on first use, if not made yet
        return feature.screen(self.services)

    def _mode_screen(self, mode: str) -> Screen[None]:
        screen = self._make(mode)
        # no re-parse of the whole stylesheet for it
        css_is_current(self, screen, first=mode == self.DEFAULT_MODE)
        return screen

    def on_mount(self) -> None:
        hub = self.services.alerts
        if hub is not None:
            settings = self.services.config.notify
            hub.notifier.add_sink(self._alert_sink)
            if (settings.bell or settings.desktop) and not self.is_headless:
                from nomadlab.notify.terminal import terminal_sink

                hub.notifier.add_sink(terminal_sink(self._write_terminal))
        # After the first frame is painted (the screen with its footer): starting 50
        # connections (and what their first statuses set off) would otherwise delay it.
        self.call_after_refresh(self._after_first_frames)
        if self.services.hint:
            self.notify(self.services.hint, title="Welcome", timeout=15)
        # Everything built at start-up lives as long as the app: keep the garbage
        # collector from walking it again and again (long GC pauses show as lag).
        self.set_timer(3.0, self._idle_full_collections)

    def _idle_full_collections(self) -> None:
        """Freeze what start-up built, then make full (generation-2) collections at
        quiet moments instead of when an allocation happens to trip them.

        With a big fleet a full collection takes 100-200 ms (benchmarks/prom_scale.py,
        1,000 hosts), and the allocations of handling a key are what most often trip
        one, so the pause landed on the key's frame. Generations 0 and 1 stay automatic."""
        gc.freeze()
        self._gc_threshold = young, middle, old = gc.get_threshold()
        if old:  # 0: collections are off altogether; leave them so
            gc.set_threshold(young, middle, 1_000_000_000)  # no automatic generation 2
        self.set_interval(FULL_GC_CHECK, self._full_collection_if_idle)

    def _full_collection_if_idle(self) -> None:
        now = time.monotonic()
        if now - self._last_full_gc < FULL_GC_EVERY:
            return
        if now - self._last_key < KEY_QUIET and now - self._last_full_gc < FULL_GC_LATEST:
            return  # keys are coming: wait for a pause (but not for ever)
        self._last_full_gc = now
        gc.collect()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _after_first_frames(self) -> None:
        if not gc.isenabled():  # `nomadlab` turned it off until the first frame
            gc.freeze()
            gc.enable()
        apply_textual_patches()  # the key fix for TextArea too (imports it)
        # `nomadlab` makes the feature services (and imports their modules) now; the
        # workspace fills their panes.
        self.services.install_features()
        if self.services.start_fleet:
            self.run_worker(self._start_services(), name="services", exclusive=True)

    async def _start_services(self) -> None:
        lazyimport.load("asyncssh")  # deferred by the CLI until the first frame was painted
        s = self.services
        await s.fleet.start()
        if s.logs is not None:
            await s.logs.start()
        if s.alerts is not None:
            await s.alerts.start()
        for service in s.feature_services():
            await service.start()
        if s.initial_log is not None and s.logs is not None:
            host, path = s.initial_log
            try:
                name = s.logs.open_adhoc(host, path)
            except (KeyError, ValueError) as exc:
                self.notify(render.clean(str(exc)), severity="error", timeout=10)
            else:
                await self.open_log(name)

    async def on_unmount(self) -> None:
        if self._gc_threshold is not None:  # the process may go on (tests)
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        s = self.services
        for service in s.feature_services():
            await service.stop()
        if s.alerts is not None:
            await s.alerts.stop(timeout=2.0)
        if s.logs is not None:
            await s.logs.stop()
        await s.fleet.stop()

    def notify(self, message: str, *, title: str = "",
               severity: SeverityLevel = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Notifications never parse markup here: they often quote host names and log text."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # ------------------------------------------------------------------ alerts

    def _alert_sink(self, channel: str, alert: Alert) -> None:
        if channel == "toast" and self.services.config.notify.toast:
            severity = TOAST_SEVERITY.get(alert.severity, "information")
            self.notify(render.clean(alert.message, 300), title=render.clean(alert.title, 80),
                        severity=severity,
                        timeout=10 if alert.severity == "error" else 6)

    def _write_terminal(self, data: str) -> None:
        """Bell and OSC desktop notifications go straight to the terminal."""
        driver = self._driver
        if driver is not None:
            driver.write(data)
            driver.flush()

    async def open_log(self, name: str, at: Alert | None = None) -> None:
        """The logs screen on log ``name``; with ``at``, paused on the alert's line."""
        from nomadlab.ui.logs.screen import LogsScreen

        await self.switch_mode("logs")
        screen = self.screen
        if isinstance(screen, LogsScreen):
            when_composed(screen, screen.show_log, name, None, at)

    async def action_open_mode(self, mode: str) -> None:
        if mode in MODES and self.current_mode != mode:
            await self.switch_mode(mode)

    async def open_fleet_host(self, host: str | None) -> None:
        from nomadlab.ui.fleet.screen import FleetScreen

        await self.switch_mode("fleet")
        if host is not None:
            screen = self.screen
            if isinstance(screen, FleetScreen):
                when_composed(screen, screen.select_host, host)

    # ------------------------------------------------------------------ help & palette

    def _binding_rows(self, screen: Screen[object]) -> list[tuple[str, list[tuple[str, str]]]]:
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        seen: set[str] = set()
        nodes: list[tuple[str, DOMNode]] = [("This screen", screen)]
        focused = screen.focused
        if focused is not None and focused is not screen:
            nodes.append(("Focused", focused))
        for title, node in nodes:
            rows = []
            for binding in node.BINDINGS:
                if isinstance(binding, Binding) and binding.description and binding.key not in seen:
                    seen.add(binding.key)
                    rows.append((self.get_key_display(binding), binding.description))
            if rows:
                sections.append((title, rows))
        rows = [(MODE_KEYS[m], f"{MODE_TITLES[m]} screen") for m in MODES]
        rows += [("?", "this help"), ("ctrl+p", "command palette"), ("q", "quit")]
        sections.append(("Everywhere", rows))
        return sections

    def action_help(self) -> None:
        from nomadlab.ui.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self._binding_rows(self.screen)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for mode in MODES:
            yield SystemCommand(f"Go to {MODE_TITLES[mode]}", f"key {MODE_KEYS[mode]}",
                                partial(self.call_later, self.action_open_mode, mode))
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                yield SystemCommand(f"{screen.TITLE or 'Screen'}: {binding.description}",
                                    f"key {self.get_key_display(binding)}",
                                    partial(screen.run_action, binding.action))
        yield SystemCommand("Help: all keys", "key ?", self.action_help)
        yield from super().get_system_commands(screen)
