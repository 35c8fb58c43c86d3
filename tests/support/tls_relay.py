"""A direct-TLS relay: what libpq >= 17 speaks with `sslnegotiation=direct`, relayed in plaintext.

The embedded PostgreSQL 18 is built without OpenSSL, so TLS to it goes through `DirectTlsRelay`.
A server that does TLS itself, including the classic SSLRequest negotiation, is
`tests.support.debian_postgres.DebianPostgres`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

ALPN = "postgresql"


class DirectTlsRelay:
    """TLS (ALPN `postgresql`, TLS >= 1.2) on 127.0.0.1:`.port`, relayed in plaintext to an upstream.

    Runs an asyncio loop in a background thread. `.accepted` counts TLS sessions established
    and `.tls_versions` their protocol versions; a connection that does not complete a TLS
    handshake within `handshake_timeout` is closed. Exit closes every connection at once.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        cert: Path,
        key: Path,
        handshake_timeout: float = 5.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0
        self.tls_versions: list[str] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.set_alpn_protocols([ALPN])
        self._context.load_cert_chain(cert, key)
        self._handshake_timeout = handshake_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._clients: set[socket.socket] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> DirectTlsRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # failed handshakes are expected
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="direct-tls-relay", daemon=True)
        self._thread.start()
        loop.call_soon_threadsafe(loop.add_reader, listener.fileno(), self._accept)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout=3)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=3)
            if not thread.is_alive():
                loop.close()
        for client in self._clients:  # any the loop had no time to close
            client.close()
        self._clients.clear()
        if self._listener is not None:
            self._listener.close()
        self._loop = self._thread = self._listener = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accept(self) -> None:
        """Accept what is pending (in a reader callback, so no accepted socket can be lost)."""
        assert self._listener is not None
        for _ in range(64):
            try:
                client, _ = self._listener.accept()
            except OSError:  # nothing pending (BlockingIOError), or e.g. EMFILE: retried when readable
                return
            client.setblocking(False)
            self._clients.add(client)
            self._spawn(self._relay(client))

    async def _relay(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        client_reader = asyncio.StreamReader()
        client_protocol = asyncio.StreamReaderProtocol(client_reader)
        transports: list[asyncio.WriteTransport] = []
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: client_protocol,
                client,
                ssl=self._context,
                ssl_handshake_timeout=self._handshake_timeout,
                ssl_shutdown_timeout=1.0,
            )
            transports.append(transport)
            self._transports.add(transport)
            client_writer = asyncio.StreamWriter(transport, client_protocol, client_reader, loop)
            self.accepted += 1
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.tls_versions.append(str(ssl_object.version()))
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), timeout=5
            )
            transports.append(upstream_writer.transport)
            self._transports.add(upstream_writer.transport)
            pumps = [
                asyncio.create_task(_pump(client_reader, upstream_writer)),
                asyncio.create_task(_pump(upstream_reader, client_writer)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, TimeoutError):
            pass  # not TLS, a failed handshake, or the upstream is down: just close
        finally:
            if not transports:
                client.close()
            self._clients.discard(client)
            for opened in transports:
                self._transports.discard(opened)
                opened.abort()

    async def _close_all(self) -> None:
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
        for transport in list(self._transports):
            transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(3):  # let the aborted transports' connection_lost callbacks close their sockets
            await asyncio.sleep(0)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until EOF or an error."""
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
