"""The TUI's one store-change broadcast: a widget hears the writes it cares about, from
this process at once and from another process at the watch's next check."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Static

from nomadlab.core.store import Store
from nomadlab.ui.store_watch import store_watch, watch_store


class Listener(Static):
    def __init__(self, store: Store, *features: str) -> None:
        super().__init__("")
        self.store = store
        self.features = features
        self.calls = 0

    def on_mount(self) -> None:
        watch_store(self, self.store, self.heard, *self.features)

    def heard(self) -> None:
        self.calls += 1


class Watching(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield Listener(self.store, "board")
        yield Listener(self.store)


async def test_widgets_hear_the_changes_they_care_about(tmp_path: Path) -> None:
    path = tmp_path / "nomadlab.db"
    store, other = Store(path), Store(path)
    app = Watching(store)
    async with app.run_test() as pilot:
        board, anything = app.query(Listener)
        watch = store_watch(app, store)
        assert store_watch(app, store) is watch  # one per app and store
        with store.transaction("board") as db:
            db.execute("INSERT INTO kv VALUES ('a', '1', 1.0)")
        await pilot.pause()
        assert (board.calls, anything.calls) == (1, 1)
        with store.transaction("fleet") as db:
            db.execute("INSERT INTO kv VALUES ('b', '1', 1.0)")
        await pilot.pause()
        assert (board.calls, anything.calls) == (1, 2)  # not the board's
        other.set_state("theme", "dark", now=1.0)  # another process: heard at the check
        await pilot.pause()
        assert (board.calls, anything.calls) == (1, 2)
        watch.check()  # what the watch's one timer does every second
        await pilot.pause()
        assert (board.calls, anything.calls) == (2, 3)
        await board.remove()
        store.set_state("theme", "light", now=2.0)
        await pilot.pause()
        assert anything.calls == 4 and board.calls == 2
    store.set_state("theme", "dark", now=3.0)  # the app has ended: the write goes on
    assert store.get_state("theme") == "dark"
    store.close()
    other.close()
