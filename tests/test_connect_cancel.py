"""Cancelling a connect over a real sshd: the cancellation is never lost.

Stopping a host (SIGINT to ``nomadlab exporter``, quitting the UI) cancels its
supervisor's task. When that came in the very loop turn the SSH handshake finished,
asyncio.wait_for (Python 3.11; asyncssh's connect_timeout is one) returned the new
connection instead of raising, and the "stopped" host went on to start its agent: about
1 SIGINT in 10 on a busy machine waited out Fleet.stop's STOP_TIMEOUT. The moment is
hit here exactly, not by chance: a task factory on the loop (no code of ours replaced)
cancels the connecting task from the done-callback of the k-th task the handshake ran
(asyncssh's key exchange, auth steps, and, before the fix, the one that handed back the
connection), the turn before the task waiting on it could run; k = 1, 2, ... until the
connect is over first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import asyncssh
import pytest
from conftest import fast_ssh, host_for
from sshd import SshServer

from nomadlab.core.config import HostConfig
from nomadlab.remote.ssh import Connector

pytestmark = pytest.mark.sshd


async def connect_cancelled_at(connector: Connector, host: HostConfig, k: int
                               ) -> tuple[asyncio.Task[asyncssh.SSHClientConnection], bool]:
    """Connect; cancel it as the k-th other task ends. (The task, whether it was.)"""
    loop = asyncio.get_running_loop()
    connecting: asyncio.Task[asyncssh.SSHClientConnection] | None = None
    ended = 0
    cancelled = False

    def count(task: asyncio.Task[Any]) -> None:
        nonlocal ended, cancelled
        if task is connecting or connecting is None or connecting.done():
            return
        ended += 1
        if ended == k:
            cancelled = connecting.cancel()

    def factory(loop: asyncio.AbstractEventLoop,
                coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
                **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(count)
        return task

    loop.set_task_factory(factory)
    try:
        connecting = asyncio.create_task(connector.connect(host))
        await asyncio.wait([connecting])
    finally:
        loop.set_task_factory(None)
    return connecting, cancelled


async def test_a_connect_cancelled_at_any_step_of_the_handshake_stays_cancelled(
        make_sshd: Any) -> None:
    server: SshServer = make_sshd()
    server.write_known_hosts(server.base / "known_hosts")
    host = host_for(server)
    connector = Connector(fast_ssh(), [host])
    steps = 0
    for k in range(1, 30):  # bounded: a handshake is a handful of tasks
        task, cancelled = await connect_cancelled_at(connector, host, k)
        won = None if task.cancelled() or task.exception() else task.result()
        if won is not None:
            won.close()
            await won.wait_closed()
        if not cancelled:  # the connect was over before k tasks ended
            assert won is not None, task.exception()
            break
        steps += 1
        assert won is None, f"cancelled as task {k} of the handshake ended, " \
                            "the connect returned a live connection"
        assert task.cancelled()
    else:
        raise AssertionError("a connect ran more than 29 tasks")
    assert steps >= 1, "no step of the handshake ran in a task of its own"
    await connector.close()
