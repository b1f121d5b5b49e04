"""Open any HOST:PATH as a log, with completion of host names and remote paths."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from nomadlab.core.model import LOCAL_HOST
from nomadlab.ui import render
from nomadlab.ui.services import Services


def split_spec(spec: str) -> tuple[str, str] | None:
    """'host:path' -> (host, path); None without a colon or with an empty part."""
    host, sep, path = spec.partition(":")
    if not sep or not host.strip() or not path.strip():
        return None
    return host.strip(), path.strip()


class OpenLogScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "complete", "Complete", show=False, priority=True),
        Binding("down", "choose(1)", "Next", show=False),
        Binding("up", "choose(-1)", "Previous", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.error = ""

    def hosts(self) -> list[str]:
        names = [h.name for h in self.services.config.hosts]
        return [*names, LOCAL_HOST]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text("Open a log", style="bold"), classes="title")
            yield Input(placeholder="host:/path/to/train.log  (a glob follows the newest match)",
                        id="spec")
            yield OptionList(id="choices")
            yield Static(Text("tab: complete · enter: open · esc: cancel", style="dim"),
                         id="open-hint")

    def on_mount(self) -> None:
        self.query_one("#spec", Input).focus()
        self._suggest("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._suggest(event.value)

    @work(exclusive=True, group="complete")
    async def _suggest(self, value: str) -> None:
        await asyncio.sleep(0.15)  # debounce: typing fast asks the host once
        choices = await self.completions(value)
        if not self.is_attached:  # the dialog closed while the host answered
            return
        options = self.query_one("#choices", OptionList)
        options.clear_options()
        options.add_options([Option(render.safe(c), id=c) for c in choices[:200]])
        if choices:
            options.highlighted = 0

    async def completions(self, value: str) -> list[str]:
        host, sep, path = value.partition(":")
        if not sep:
            return [f"{h}:" for h in self.hosts() if h.startswith(host)]
        logs = self.services.logs
        if logs is None or host not in self.hosts():
            return []
        try:
            found = await asyncio.wait_for(logs.complete_path(host, path or "~/"), 5)
        except (TimeoutError, OSError, KeyError, ValueError) as exc:
            if self.is_attached:
                hint = self.query_one("#open-hint", Static)
                hint.update(render.safe(f"completion unavailable: {exc}", "yellow"))
            return []
        return [f"{host}:{p}" for p in found]

    def action_choose(self, step: int) -> None:
        options = self.query_one("#choices", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = (current + step) % options.option_count

    def action_complete(self) -> None:
        options = self.query_one("#choices", OptionList)
        box = self.query_one("#spec", Input)
        if options.highlighted is None or not options.option_count:
            return
        option = options.get_option_at_index(options.highlighted)
        if option.id is not None:
            box.value = option.id
            box.cursor_position = len(box.value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            box = self.query_one("#spec", Input)
            box.value = event.option.id
            box.focus()
            if not event.option.id.endswith(("/", ":")):
                self._open(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value)

    def _open(self, value: str) -> None:
        spec = split_spec(value)
        if spec is None:
            self.query_one("#open-hint", Static).update(
                Text("Write it as host:path, e.g. lambda-h100:~/runs/exp42/train.log",
                     style="yellow"))
            return
        if spec[0] not in self.hosts():
            self.query_one("#open-hint", Static).update(render.safe(
                f"unknown host {spec[0]!r}; hosts: {', '.join(self.hosts())}", "yellow"))
            return
        self.dismiss(spec)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def dismiss(self, result: tuple[str, str] | None = None) -> AwaitComplete:
        self.workers.cancel_group(self, "complete")
        return super().dismiss(result)
