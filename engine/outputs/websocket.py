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
from urllib.parse import unquote_to_bytes

from websockets.asyncio.server import ServerConnection

from engine.errors import AvatarcamError

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD_BYTES = 16 * 1024  # a WebSocket upgrade request is a few hundred bytes


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
                self._server = await serve(self._handle, self.host, self.port, max_size=self.max_message_bytes,
                                           create_connection=_token_checked(self))
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

    def accepts(self, head: bytes) -> bool:
        """Whether a raw HTTP request head carries the session's token (``?token=`` in the target, or
        ``Authorization: Bearer``, the scheme in any case as RFC 9110 says). Counts the refusals."""
        offered = token_offered(head)
        # Compared as bytes, in constant time: a token may hold any bytes at all.
        if secrets.compare_digest(offered, self.token.encode()):
            return True
        self.refused += 1
        return False

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


def token_offered(head: bytes) -> bytes:
    """The token in a raw request head, read leniently (any bytes, any line ending): the
    Authorization header's Bearer credentials if there are any, else the ``token`` query parameter."""
    request_line, *header_lines = head.replace(b"\r\n", b"\n").split(b"\n")
    target = (request_line.split(b" ") + [b""])[1]  # "GET /?token=... HTTP/1.1"
    offered = b""
    for pair in target.partition(b"?")[2].split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == b"token":
            offered = unquote_to_bytes(value.replace(b"+", b" "))
            break
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return credentials.strip()
    return offered


def _token_checked(output: WebSocketOutput) -> type[ServerConnection]:
    """A connection that checks the token on the raw request head before the library's HTTP parser
    reads a byte of it. That parser closes the connection without an answer on bytes HTTP forbids
    (a control byte in a header, raw non-ASCII in the path), and ``process_request`` only ever sees
    requests it parsed; checking first, here, answers every request without the token with a 401
    whatever its bytes, and the parser only reads requests from clients holding the token.
    (``create_connection`` is the hook ``serve`` documents for customising a connection.)"""

    class TokenCheckedConnection(ServerConnection):
        _request_head = b""
        _head_checked = False

        def data_received(self, data: bytes) -> None:
            if self._head_checked:
                super().data_received(data)
                return
            head = self._request_head = self._request_head + data
            ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
            if not ends and len(head) <= MAX_REQUEST_HEAD_BYTES:
                return  # the rest of the head is still on its way
            self._request_head, self._head_checked = b"", True
            if not ends:
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "avatarcam: request head too large\n")
            elif not output.accepts(head[:min(ends)]):
                self._refuse(HTTPStatus.UNAUTHORIZED, "avatarcam: missing or wrong token\n")
            else:
                super().data_received(head)

        def _refuse(self, status: HTTPStatus, text: str) -> None:
            # The library's own response; then the connection closes once the answer is sent, without
            # waiting for the client to hang up.
            self.protocol.send_response(self.protocol.reject(status, text))
            self.send_data()
            self.transport.close()

    return TokenCheckedConnection
