"""What a screen may ask of the app: open a log, show a host (ui/app.py's NomadApp).

Screens see ``self.app`` as a plain Textual ``App``; :func:`navigator` gives them the
app's typed face instead of calling methods found by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from textual.app import App

    from nomadlab.core.alerts import Alert


@runtime_checkable
class Navigator(Protocol):
    async def open_log(self, name: str, at: Alert | None = None) -> None:
        """The logs screen on log ``name``; with ``at``, paused on the alert's line."""
        ...

    async def open_fleet_host(self, host: str | None) -> None:
        """The fleet screen, on ``host`` when given."""
        ...


def navigator(app: App[Any]) -> Navigator | None:
    """The app as a :class:`Navigator`; None in an app without those screens (tests)."""
    return app if isinstance(app, Navigator) else None
