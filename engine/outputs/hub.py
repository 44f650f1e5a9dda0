"""All data outputs behind one call per output frame: ``publish(frame, emotion)``."""

from __future__ import annotations

from enum import StrEnum

from engine.errors import AvatarcamError
from engine.fusion.fuser import EmotionState
from engine.outputs.messages import MessageFactory
from engine.outputs.speak import SpeakServer
from engine.outputs.vmc import VmcSender
from engine.outputs.websocket import WebSocketOutput
from engine.packets import AvatarFrame


def parse_endpoint(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port), with a clear error otherwise."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise AvatarcamError(f"'{text}' is not HOST:PORT or PORT.", "For example: 8765 or 127.0.0.1:39539.") from None
    if not 0 <= number <= 65535:
        raise AvatarcamError(f"Port {number} is out of range.", "Use a port between 1 and 65535.")
    return host, number


class DataStream(StrEnum):
    """The data streams a session can send (each needs the user's consent)."""

    WEBSOCKET = "websocket"
    VMC = "vmc"


class DataOutputs:
    """The WebSocket and VMC outputs that are on. ``start`` raises ``AvatarcamError`` if one cannot
    start (the others are closed again); ``close`` is idempotent."""

    def __init__(self, websocket: WebSocketOutput | None = None, vmc: VmcSender | None = None,
                 session_id: str | None = None) -> None:
        self.websocket, self.vmc = websocket, vmc
        self.messages = MessageFactory(session_id)
        self._started = False

    @classmethod
    def from_specs(cls, ws: str | None, vmc: str | None, *, speak: bool = False) -> DataOutputs:
        """``speak``: the WebSocket also takes speak requests (``engine.outputs.speak``)."""
        server = WebSocketOutput if not speak else SpeakServer
        return cls(server(*parse_endpoint(ws)) if ws else None, VmcSender(*parse_endpoint(vmc)) if vmc else None)

    @property
    def active(self) -> bool:
        return self.websocket is not None or self.vmc is not None

    def start(self) -> None:
        """Start every output (idempotent)."""
        if self._started:
            return
        try:
            for output in (self.websocket, self.vmc):
                if output is not None:
                    output.start()
        except AvatarcamError:
            self.close()
            raise
        self._started = True

    def publish(self, frame: AvatarFrame, emotion: EmotionState | None, viseme: str = "sil", viseme_conf: float = 0.0) -> None:
        if self.websocket is not None:
            self.websocket.publish(self.messages.avatar_frame(frame, viseme, viseme_conf))
            if emotion is not None:
                self.websocket.publish(self.messages.emotion_update(emotion, frame))
        if self.vmc is not None:
            self.vmc.send(frame, tracking=frame.face_present)

    def close_stream(self, stream: DataStream) -> None:
        """Close one stream now, e.g. when the user withdraws consent."""
        if stream is DataStream.WEBSOCKET and self.websocket is not None:
            self.websocket.close()
            self.websocket = None
        elif stream is DataStream.VMC and self.vmc is not None:
            self.vmc.close()
            self.vmc = None

    def close(self) -> None:
        for output in (self.websocket, self.vmc):
            if output is not None:
                output.close()
