"""A TCP proxy on 127.0.0.1 that can play dead Wi-Fi, for link-failure tests.

``blackhole()`` stops forwarding in both directions but keeps every socket open: no
FIN, no RST, just silence, which is what a dropped Wi-Fi link or a sleeping NAT looks
like to both ends. ``restore()`` brings the link back the way a real network does
after such an outage: connections from before are gone (both ends get a reset), new
connections are forwarded again.
"""

from __future__ import annotations

import asyncio
import contextlib

CHUNK = 1 << 16


class _Link:
    """One client connection and (once open) its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.dead = False
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def blackhole(self) -> None:
        """Silence: nothing is forwarded any more, nothing is closed."""
        self.dead = True

    def restore(self) -> None:
        """The network is back; connections that lived through the outage are reset."""
        self.dead = False
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    # ------------------------------------------------------------------ forwarding

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        if self.dead:
            # The SYN got through to us but nothing beyond: swallow what the client says.
            await self._pump(reader, None, link)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._links.discard(link)
            return
        link.upstream = up_writer
        self._spawn(self._pump(up_reader, writer, link))
        await self._pump(reader, up_writer, link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None,
                    link: _Link) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self.dead or writer is None:
                    continue  # lost on the way
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if not self.dead and link in self._links:
            # An orderly close while the link is up: pass it on.
            self._links.discard(link)
            link.close()
