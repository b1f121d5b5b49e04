"""The pane kinds of the workspace: what each shows and which full screen it opens.

Each issue that brings a screen also brings its pane here; until then the pane says
what it will hold.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from nomadlab.ui.services import Services
from nomadlab.ui.widgets.fleet_pane import FleetPane
from nomadlab.ui.widgets.log_pane import LogPane


@dataclass(frozen=True, slots=True)
class PaneKind:
    key: str  # config name: fleet, logs, focus, papers, board
    title: str
    mode: str  # the full screen it opens (and its number key)
    number: str
    build: Callable[[Services], Widget]


def _placeholder(text: str) -> Callable[[Services], Widget]:
    def build(services: Services) -> Widget:
        return Static(Text(text, style="dim italic"), classes="placeholder")

    return build


def _feature(target: str, text: str) -> Callable[[Services], Widget]:
    """The pane of a feature module ("module:Class", built with the Services), or a
    placeholder while that module does not exist."""
    module_name, _, class_name = target.partition(":")

    def build(services: Services) -> Widget:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _placeholder(text)(services)
        widget: Widget = getattr(module, class_name)(services)
        return widget

    return build


PANES: dict[str, PaneKind] = {
    "fleet": PaneKind("fleet", "Fleet", "fleet", "1", FleetPane),
    "logs": PaneKind("logs", "Logs", "logs", "2", LogPane),
    "board": PaneKind("board", "Board", "board", "3",
                      _feature("nomadlab.ui.widgets.board_pane:BoardPane",
                               "Experiments from Hypothesis to Deployment.")),
    "papers": PaneKind("papers", "Papers", "papers", "4",
                       _feature("nomadlab.ui.widgets.papers_pane:PapersPane",
                                "This week's reads against the cap.")),
    "focus": PaneKind("focus", "Focus", "focus", "5",
                      _feature("nomadlab.ui.widgets.focus_pane:FocusPane",
                               "Deep-work timer and today's plan.")),
    "jobs": PaneKind("jobs", "Jobs", "jobs", "6",
                     _feature("nomadlab.ui.widgets.jobs_pane:JobsPane",
                              "Slurm jobs of the configured clusters.")),
}
