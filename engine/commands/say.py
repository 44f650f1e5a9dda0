"""``avatarcam say``: the speak API's reference client (and test tool).

Connects to a running avatar's WebSocket with its token, sends ``speak`` (with an optional emotion),
the WAV file and ``speak_end``, and yields the ``speech_event`` payloads until the utterance is
finished or interrupted; ``stop_after`` sends ``stop`` that long after the speech started.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from engine.errors import AvatarcamError


def _with_token(url: str, token: str | None) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise AvatarcamError(f"'{url}' is not a WebSocket URL.", "Use the URL 'avatarcam run --ws PORT --speak' printed, e.g. ws://127.0.0.1:8765/.")
    query = parse_qs(parts.query)
    if token:
        query["token"] = [token]
    if not query.get("token"):
        raise AvatarcamError("No token was given.", "Pass --token with the token 'avatarcam run' printed, or put ?token=... in the URL.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query, doseq=True), ""))


def say(url: str, token: str | None, wav: Path, *, emotion: str | None = None, stop_after: float | None = None,
        timeout: float = 120.0) -> Iterator[dict]:
    """Send ``wav`` to be spoken; yield each speech_event payload until this utterance ends."""
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    if not wav.is_file():
        raise AvatarcamError(f"Cannot read '{wav}': no such file.", "Name a WAV file to say.")
    data = wav.read_bytes()
    utterance = uuid.uuid4().hex[:8]
    try:
        with connect(_with_token(url, token), max_size=None, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "speak", "id": utterance, **({"emotion": emotion} if emotion else {})}))
            ws.send(data)
            deadline = time.monotonic() + timeout
            started_at: float | None = None
            while time.monotonic() < deadline:
                wait = deadline - time.monotonic()
                if started_at is not None and stop_after is not None:
                    wait = min(wait, max(0.0, started_at + stop_after - time.monotonic()))
                try:
                    message = json.loads(ws.recv(timeout=wait))
                except TimeoutError:
                    if started_at is not None and stop_after is not None and time.monotonic() >= started_at + stop_after:
                        ws.send(json.dumps({"type": "stop"}))
                        stop_after = None
                    continue
                if message.get("type") != "speech_event":
                    continue
                payload = message["payload"]
                yield payload
                if payload["event"] == "rejected":
                    raise AvatarcamError(f"The avatar refused the speech: {payload['reason']}.", "Send a WAV file.")
                if payload["utterance_id"] != utterance:
                    continue
                if payload["event"] == "speech_started":
                    started_at = time.monotonic()
                elif payload["event"] in ("speech_finished", "interrupted"):
                    return
            raise AvatarcamError(f"The avatar did not finish speaking within {timeout:g} s.", "Check 'avatarcam run' is still running.")
    except InvalidStatus as exc:
        raise AvatarcamError(f"The avatar at {urlsplit(url).netloc} refused the connection ({exc.response.status_code}).",
                             "Check the token: it changes every time 'avatarcam run' starts.") from None
    except (OSError, WebSocketException) as exc:
        raise AvatarcamError(f"Cannot reach the avatar at {urlsplit(url).netloc} ({exc}).",
                             "Start it with 'avatarcam run --ws PORT --speak' and use the URL it prints.") from None
