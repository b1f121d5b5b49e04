"""core/tasks.BackgroundTask: the start/stop pair every service's loop uses."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nomadlab.core.tasks import BackgroundTask


def named(name: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name]


async def test_start_twice_is_one_task() -> None:
    calls: list[int] = []
    cancelled = asyncio.Event()

    async def loop() -> None:
        calls.append(1)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bg = BackgroundTask("ticker")
    assert not bg.running
    assert bg.start(loop) is True
    assert bg.start(loop) is False
    await asyncio.sleep(0)  # let it begin
    assert bg.running
    assert calls == [1]
    assert len(named("ticker")) == 1

    assert await bg.stop() is True
    assert cancelled.is_set()
    assert not bg.running
    assert named("ticker") == []


async def test_stop_of_a_never_started_one_returns_at_once() -> None:
    bg = BackgroundTask("idle")
    assert await bg.stop(timeout=0) is True
    assert not bg.running
    assert bg.error is None


async def test_stop_of_a_task_that_ignores_cancellation_returns_by_the_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()
    seen: list[asyncio.Task[object] | None] = []

    async def stubborn() -> None:
        seen.append(asyncio.current_task())
        while True:
            try:
                await release.wait()
                return
            except asyncio.CancelledError:
                continue  # ignores the cancel

    bg = BackgroundTask("stubborn")
    bg.start(stubborn)
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="nomadlab.core.tasks"):
        assert await bg.stop(timeout=0.05) is False
    assert not bg.running  # let go: a later start() makes a new one
    assert "stubborn did not stop within" in caplog.text

    task = seen[0]
    assert task is not None and not task.done()
    release.set()
    await asyncio.wait({task}, timeout=5)
    assert task.done() and not task.cancelled()


async def test_an_exception_in_the_task_is_logged_kept_and_handed_on(
        caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    told = asyncio.Event()

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        told.set()

    async def broken() -> None:
        raise ValueError("the loop broke")

    bg = BackgroundTask("broken", on_error=on_error)
    with caplog.at_level(logging.ERROR, logger="nomadlab.core.tasks"):
        bg.start(broken)
        await asyncio.wait_for(told.wait(), timeout=5)

    assert [str(e) for e in errors] == ["the loop broke"]
    assert isinstance(bg.error, ValueError)
    assert not bg.running
    record = next(r for r in caplog.records if r.name == "nomadlab.core.tasks")
    assert record.levelno == logging.ERROR
    assert "broken failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is bg.error

    # stop() goes on: the failure was told when it happened, not raised again here
    assert await bg.stop() is True


async def ended(bg: BackgroundTask) -> None:
    for _ in range(10):  # bounded: a task that returns needs a loop turn or two
        if not bg.running:
            return
        await asyncio.sleep(0)


async def test_a_task_that_ended_is_started_again() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    bg = BackgroundTask("once")
    bg.start(once)
    await ended(bg)
    assert not bg.running and bg.error is None
    assert bg.start(once) is True
    await ended(bg)
    assert runs == [1, 1]
    assert await bg.stop() is True


async def test_cancelling_the_caller_of_stop_still_cancels_the_caller() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    bg = BackgroundTask("stubborn2")
    bg.start(stubborn)
    await asyncio.sleep(0)
    stopping = asyncio.get_running_loop().create_task(bg.stop(timeout=30))
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert bg.running is False
    release.set()
    left = named("stubborn2")
    assert len(left) == 1
    await asyncio.wait(left, timeout=5)
