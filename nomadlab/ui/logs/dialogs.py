"""Open any HOST:PATH as a log, with completion of host names and remote paths."""

from __future__ import annotations

import asyncio
import unicodedata

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

HINT = "tab: complete · enter: open · esc: cancel"


def visible_name(name: str) -> str:
    """A remote file name, safe to show and to edit: every control or invisible
    formatting character (C0, DEL, C1, bidi overrides, zero-width) as ``<U+XXXX>``.

    Anyone who can create a file in a folder the user browses picks its name: a raw
    OSC 52 or DCS sequence in it would reach the terminal.
    """
    out = []
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"<U+{ord(char):04X}>")
        else:
            out.append(char)
    return "".join(out)


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
        self.suggested_for: str | None = None  # the text the shown suggestions are for
        self._shown: dict[str, str] = {}  # suggestion as shown -> as the host spells it

    def hosts(self) -> list[str]:
        names = [h.name for h in self.services.config.hosts]
        return [*names, LOCAL_HOST]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text("Open a log", style="bold"), classes="title")
            yield Input(placeholder="host:/path/to/train.log  (a glob follows the newest match)",
                        id="spec")
            yield OptionList(id="choices")
            yield Static(Text(HINT, style="dim"), id="open-hint")

    def on_mount(self) -> None:
        self.query_one("#spec", Input).focus()
        self._suggest("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._suggest(event.value)

    @work(exclusive=True, group="complete")
    async def _suggest(self, value: str) -> None:
        await asyncio.sleep(0.15)  # debounce: typing fast asks the host once
        choices, reason = await self.completions(value)
        if not self.is_attached:  # the dialog closed while the host answered
            return
        box = self.query_one("#spec", Input)
        if box.value != value:  # typed on meanwhile: a newer request is coming
            return
        options = self.query_one("#choices", OptionList)
        options.clear_options()
        self._shown = {}
        for choice in choices[:200]:
            shown = visible_name(choice)
            if shown in self._shown:  # a name that spells another's escape: offer one
                continue
            self._shown[shown] = choice
            options.add_option(Option(Text(shown), id=shown))
        if choices:
            options.highlighted = 0
        self.suggested_for = value
        self._hint(value, choices, reason)

    def _hint(self, value: str, choices: list[str], reason: str | None) -> None:
        hint = self.query_one("#open-hint", Static)
        if reason is not None:
            hint.update(render.safe(f"completion unavailable: {reason}", "yellow"))
        elif not choices and ":" in value:
            hint.update(Text("no matching files or folders · enter: open as typed", "dim"))
        else:
            hint.update(Text(HINT, style="dim"))

    async def completions(self, value: str) -> tuple[list[str], str | None]:
        """Completions of ``value`` (raw names, as the host spells them), and why there
        are none when the host could not be asked."""
        host, sep, path = value.partition(":")
        if not sep:
            return [f"{h}:" for h in self.hosts() if h.startswith(host)], None
        logs = self.services.logs
        if logs is None:
            return [], "no logs service"
        if host not in self.hosts():
            return [], f"unknown host {host!r}"
        try:
            found, reason = await asyncio.wait_for(
                logs.complete_path_explained(host, path or "~/"), 6)
        except TimeoutError:
            return [], f"{host} did not answer in time"
        return [f"{host}:{p}" for p in found], reason

    def action_choose(self, step: int) -> None:
        options = self.query_one("#choices", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = (current + step) % options.option_count

    def action_complete(self) -> None:
        options = self.query_one("#choices", OptionList)
        box = self.query_one("#spec", Input)
        if box.value != self.suggested_for:
            # The suggestions were for older text: never apply them over what was
            # typed since; ask again for what is there now.
            self._suggest(box.value)
            return
        if options.highlighted is None or not options.option_count:
            return
        option = options.get_option_at_index(options.highlighted)
        if option.id is not None:
            self._set_value(option.id)

    def _set_value(self, shown: str) -> None:
        """Put a suggestion in the box: as shown (control characters made visible)."""
        box = self.query_one("#spec", Input)
        box.value = shown
        box.cursor_position = len(shown)

    def raw_spec(self, value: str) -> str:
        """What the user means by ``value``: a suggestion's raw name when it is one."""
        return self._shown.get(value, value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self._set_value(event.option.id)
            self.query_one("#spec", Input).focus()
            if not event.option.id.endswith(("/", ":")):
                self._open(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value)

    def _open(self, value: str) -> None:
        spec = split_spec(self.raw_spec(value))
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
