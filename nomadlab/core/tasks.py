"""One background task of a service: started once, stopped within a bound.

A service's ``start()`` runs a loop in the background (a ticker, a poller, a host's
connection) and its ``stop()`` ends it. ``BackgroundTask`` is that pair, once:

    self._ticker = BackgroundTask("focus ticker")
    ...
    self._ticker.start(self._tick_forever)      # again while it runs: nothing
    ...
    await self._ticker.stop(timeout=5.0)        # cancels, waits at most 5 s

What happens to an exception in the task: it is not swallowed silently. When the
task ends with one (not by being cancelled), it is logged at ERROR level with its
traceback on the ``nomadlab.core.tasks`` logger as it happens, kept in ``error``, and
handed to ``on_error`` if one was given (a service shows it, e.g. as a state).
``stop()`` does not raise it again: a service's ``stop()`` must go on with the rest of
its teardown, and the failure was already told when it happened.

asyncio is imported where used: ``focus status --short`` imports core/focus, which
holds one of these, and must start fast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

CoroFactory = Callable[[], Coroutine[Any, Any, object]]


class BackgroundTask:
    """Holds at most one asyncio task: ``start`` is idempotent while it runs, ``stop``
    cancels it and returns within ``timeout`` seconds even if it ignores the cancel."""

    def __init__(self, name: str | None = None, *,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self.on_error = on_error
        self.error: BaseException | None = None
        self._task: asyncio.Task[object] | None = None

    @property
    def running(self) -> bool:
        """A task was started and has not ended (returned, failed or been cancelled)."""
        return self._task is not None and not self._task.done()

    def start(self, factory: CoroFactory, name: str | None = None) -> bool:
        """Start ``factory()`` as a task on the running loop, unless one still runs.

        The factory is called only when a task starts (no coroutine is left
        un-awaited). A task that has ended (returned or failed) is replaced. Returns
        whether a task was started."""
        import asyncio

        if self.running:
            return False
        self.error = None
        task = asyncio.get_running_loop().create_task(factory(), name=name or self.name)
        task.add_done_callback(self._ended)
        self._task = task
        return True

    def _ended(self, task: asyncio.Task[object]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here: asyncio does not complain at exit
        if exc is None:
            return
        self.error = exc
        log.error("background task %s failed", task.get_name(), exc_info=exc)
        if self.on_error is not None:
            self.on_error(exc)

    async def stop(self, timeout: float = 5.0) -> bool:
        """Cancel the task and wait for it, at most ``timeout`` seconds.

        Returns True when no task is left running (none was started, it ended, or it
        ended within the bound); False when it ignored the cancel past ``timeout`` (it is
        let go, logged at WARNING). An exception it ended with is not raised here (see
        the module's doc). Cancelling the caller of ``stop`` still cancels the caller."""
        import asyncio

        task, self._task = self._task, None
        if task is None or task.done():
            return True
        task.cancel()
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            log.warning("background task %s did not stop within %.1f s",
                        task.get_name(), timeout)
            return False
        return True
