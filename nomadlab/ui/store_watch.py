"""The one store-change broadcast of the TUI: screens and panes subscribe instead of
each polling the store on a timer.

`watch_store(node, store, callback, "board")` calls ``callback()`` on ``node`` (after
its pending messages) whenever the store changed for one of the named features (none
named: any change). What is heard:

- writes of this process, right after their commit (`Store.transaction` tells its
  listeners; a write made in a worker thread is passed on at the next check);
- writes of other processes (another TUI, the CLI, cron), found by one timer per app
  that asks SQLite's ``PRAGMA data_version`` every `CHECK_EVERY` seconds.

It is a Textual `Signal` owned by the app: a widget or screen that is removed stops
hearing it. Timers
about time itself (clocks, countdowns, "running for 3m") stay with their widgets.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.dom import DOMNode
from textual.signal import Signal

from nomadlab.core.store import ALL, Store

CHECK_EVERY = 1.0  # seconds between two looks at PRAGMA data_version


class StoreWatch:
    """One per app and store: hears the store, publishes `signal` in the app's thread."""

    def __init__(self, app: App[Any], store: Store, *, every: float = CHECK_EVERY) -> None:
        self.app = app
        self.store = store
        self.signal: Signal[frozenset[str]] = Signal(app, "store-changed")
        self._thread = threading.get_ident()
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._scheduled = False
        self._unsubscribe = _subscribe_weakly(self, store)
        self.timer = app.set_interval(every, self.check, name="store-watch")

    def _heard(self, features: frozenset[str]) -> None:
        """From the store, in the thread that wrote."""
        with self._lock:
            self._pending |= features
            if self._scheduled or threading.get_ident() != self._thread:
                return  # another thread: the next check passes it on
            self._scheduled = True
        self.app.call_next(self.flush)

    def check(self) -> None:
        """The one timer: other processes' commits, then whatever is pending."""
        try:
            self.store.check_changes()
        except sqlite3.Error:  # closed at exit, or not readable this once: next time
            pass
        self.flush()

    def flush(self) -> None:
        with self._lock:
            features, self._pending = frozenset(self._pending), set()
            self._scheduled = False
        if features:
            self.signal.publish(features)

    def close(self) -> None:
        self.timer.stop()
        self._unsubscribe()


def _subscribe_weakly(watch: StoreWatch, store: Store) -> Callable[[], None]:
    """The store outlives an app in tests (and a store keeps its listeners): it holds
    the watch weakly, and the first change after the watch is gone unsubscribes it."""
    ref = weakref.ref(watch)
    unsubscribed: list[Callable[[], None]] = []

    def heard(features: frozenset[str]) -> None:
        alive = ref()
        if alive is not None:
            alive._heard(features)
        elif unsubscribed:
            unsubscribed.pop()()

    unsubscribe = store.subscribe(heard)
    unsubscribed.append(unsubscribe)
    return unsubscribe


_ATTRIBUTE = "_nomadlab_store_watches"  # on the app: the watches live and die with it


def store_watch(app: App[Any], store: Store) -> StoreWatch:
    """The app's watch of ``store``, started on first use."""
    watches: dict[int, StoreWatch] = app.__dict__.setdefault(_ATTRIBUTE, {})
    watch = watches.get(id(store))
    if watch is None or watch.store is not store:
        watch = watches[id(store)] = StoreWatch(app, store)
    return watch


def watch_store(node: DOMNode, store: Store, callback: Callable[[], object],
                *features: str) -> None:
    """Call ``callback()`` on ``node`` after a change to one of ``features`` (none: any).
    A change whose writer did not name its feature (``ALL``) reaches everyone."""
    wanted = frozenset(features)

    def changed(heard: frozenset[str]) -> None:
        if not wanted or ALL in heard or wanted & heard:
            callback()

    store_watch(node.app, store).signal.subscribe(node, changed)


__all__ = ["CHECK_EVERY", "StoreWatch", "store_watch", "watch_store"]
