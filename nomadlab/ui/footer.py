"""Textual's Footer, made anew once per refresh however often the keys change.

When a screen starts, its bindings change several times before the next refresh
(mount, focus moving into a pane, the app gaining focus); Textual's Footer queues a
recompose for each, and each recompose makes its key widgets again (styles applied
to every one): at the workspace's start, four of them for the same keys, about 10 %
of the CPU to the first frame. This one queues one at a time; a recompose reads the
bindings as they are when it runs, so what it shows is the same.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    _recompose_queued = False

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._recompose_queued:
            self._recompose_queued = True
            self.call_after_refresh(self._queued_recompose)

    async def _queued_recompose(self) -> None:
        self._recompose_queued = False
        await self.recompose()
