"""A local WebSocket server streaming avatarcam's JSON messages to any external renderer.

Loopback only unless the user names another host; every client must present the session's random
token (``?token=...`` in the URL or ``Authorization: Bearer ...``). Each message type is sent at
most ``max_rate_hz`` times a second. Every client has a small bounded queue: when a slow client
falls behind, its oldest messages are dropped (and counted), so no client can ever slow the
pipeline. What clients send is read and ignored; garbage closes only that connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import threading
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlparse

from engine.errors import AvatarcamError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for addresses only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name, or empty (every address)


class WebSocketOutput:
    """Runs its own asyncio loop in a daemon thread. ``publish`` is thread-safe and never blocks.
    Subclasses that take requests from clients (the speak API) override ``on_client_message`` and
    raise ``max_message_bytes``."""

    max_message_bytes = 4096

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, token: str | None = None,
                 max_rate_hz: float = 60.0, queue_size: int = 32) -> None:
        self.host, self.port = host, port
        self.token = token or secrets.token_urlsafe(16)
        self.min_interval = 1.0 / max_rate_hz
        self.queue_size = queue_size
        self.dropped = 0
        self.refused = 0
        self._last_sent: dict[str, float] = {}
        self._clients: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address is bracketed
        return f"ws://{host}:{self.port}/?token={self.token}"

    @property
    def warning(self) -> str | None:
        """A line for the user when the stream is reachable from other computers."""
        if is_loopback(self.host):
            return None
        return (f"Warning: the WebSocket stream listens on {self.host or 'all addresses'}, so other computers on "
                f"the network can connect and, with the token, read your face and emotion data. "
                f"Use --ws {self.port} to keep it on this computer.")

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        """Bind and serve; raises ``AvatarcamError`` when the port cannot be used."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="avatarcam-websocket", daemon=True)
        self._thread.start()
        self._started.wait(10.0)
        if self._error is not None:
            self._thread = None
            raise AvatarcamError(f"The WebSocket output could not listen on {self.host}:{self.port} ({self._error}).",
                                 "Pick another port with --ws PORT, or close the program using it.")

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            try:
                self._server = await serve(self._handle, self.host, self.port, process_request=self._check_token,
                                           max_size=self.max_message_bytes)
                if self.port == 0:
                    self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                self._error = exc
                self._started.set()
                return
            self._started.set()
            await self._server.wait_closed()

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        finally:
            self._loop.close()

    def _check_token(self, connection, request):
        query = parse_qs(urlparse(request.path).query)
        offered = query.get("token", [""])[0]
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":  # auth schemes are case-insensitive (RFC 9110)
            offered = credentials.strip()
        # Compared as bytes: compare_digest refuses non-ASCII text, and a token may hold any bytes.
        if not secrets.compare_digest(offered.encode("utf-8", "surrogatepass"), self.token.encode()):
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "avatarcam: missing or wrong token\n")
        return None

    async def _handle(self, websocket) -> None:
        """Lives as long as the connection: reads (and ignores) what the client sends, while a
        side task sends it the queued messages. When the client goes, both end."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        self._clients.add(queue)
        sender = asyncio.ensure_future(self._send_queued(websocket, queue))
        try:
            async for message in websocket:
                await self.on_client_message(websocket, message)
        except Exception:
            pass
        finally:
            self._clients.discard(queue)
            sender.cancel()

    async def on_client_message(self, websocket, message: str | bytes) -> None:
        """A message from an authenticated client: the data stream has nothing to take, so it is ignored."""

    @staticmethod
    async def _send_queued(websocket, queue: asyncio.Queue) -> None:
        try:
            while True:
                await websocket.send(await queue.get())
        except Exception:
            pass

    def publish(self, message: dict[str, Any]) -> None:
        """Queue a message for every client (rate-limited per message type). Never blocks."""
        if self._loop is None or not self._clients:
            return
        now = time.monotonic()
        kind = message.get("type", "")
        if now - self._last_sent.get(kind, -1.0) < self.min_interval:
            return
        self._last_sent[kind] = now
        text = json.dumps(message, separators=(",", ":"))
        try:
            self._loop.call_soon_threadsafe(self._enqueue, text)
        except RuntimeError:  # the loop is closing
            pass

    def _enqueue(self, text: str) -> None:
        for queue in list(self._clients):
            if queue.full():
                queue.get_nowait()  # drop the oldest: a slow client never holds anyone up
                self.dropped += 1
            queue.put_nowait(text)

    def close(self) -> None:
        """Stop serving and disconnect clients. Idempotent."""
        if self._loop is not None and self._server is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._server.close)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
