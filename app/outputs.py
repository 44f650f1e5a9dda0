"""Outputs the app keeps across runs: the virtual camera with its "paused" card, and a file
recording that can be switched off mid-run. Both follow the engine's sink contract and are Qt-free.

``HoldingVirtualCamera`` stays open while the app is stopped, so Zoom or Teams keep the device
selected: when the pipeline closes it, it sends a neutral "Paused" card (the most neutral recent
frame — the avatar at rest — dimmed, with the word on it) and repeats it twice a second until the
next start or ``release()``. A missing
driver is not an error here: the app keeps running and shows why in its status line.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from engine.errors import SinkError
from engine.outputs.sinks import VideoFileSink, VirtualCameraSink
from engine.packets import RenderedFrame

from .overlay import burn_in

log = logging.getLogger(__name__)
PAUSED_REPEAT_S = 0.5
NEUTRAL_SLACK = 0.05  # a frame this close to the most neutral one seen replaces it (keeps it recent)


def expression_amount(frame: RenderedFrame) -> float:
    """How far the frame's avatar is from rest: summed controls plus head turn (1 per 30 degrees)."""
    state = frame.state
    if state is None:
        return float("inf")
    return sum(state.controls.values()) + sum(abs(a) for a in state.head) / 30.0


def paused_card(last: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """The neutral card shown while stopped: the last frame dimmed (or slate) with "Paused"."""
    if last is not None and last.shape == (height, width, 3):
        card = (last.astype(np.float32) * 0.3 + 20).astype(np.uint8)
    else:
        card = np.full((height, width, 3), (40, 46, 56), np.uint8)
    scale = max(0.6, height / 240.0)
    thickness = max(1, int(scale * 1.5))
    text = "Paused"
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.putText(card, text, ((width - w) // 2, (height + h) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (235, 238, 242), thickness, cv2.LINE_AA)
    return card


class HoldingVirtualCamera:
    """The virtual camera, held open across start/stop; see the module docstring.

    ``error`` holds why the device could not be opened (driver missing), ``device`` the name apps
    list. ``burn_in_lines`` (set from any thread) are drawn into outgoing frames when not empty.
    """

    name = "virtual camera"

    def __init__(self, device: str | None = None, backend: str | None = None) -> None:
        self._sink = VirtualCameraSink(device=device, backend=backend)
        self._lock = threading.Lock()
        self._size: tuple[int, int] | None = None
        self._last: np.ndarray | None = None
        self._neutral: tuple[float, np.ndarray] | None = None  # (expression amount, image)
        self._paused = threading.Event()
        self._repeater: tuple[threading.Thread, threading.Event] | None = None  # the card thread, its stop
        self.burn_in_lines: list[str] = []
        self.error: str | None = None
        self.device: str | None = None

    @property
    def available(self) -> bool:
        return self._size is not None

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set_device(self, device: str | None) -> None:
        """Use ``device`` (None: the first that works) from the next ``open``; lets go of another."""
        if self.available:
            if device is None or device == self.device:
                return
            self.release()
        self._sink.device = device

    def open(self, width: int, height: int, fps: float) -> None:
        self._stop_repeating()
        with self._lock:
            if self._size == (width, height):
                return
            self._sink.close()
            self._size = None
            try:
                self._sink.open(width, height, fps)
            except SinkError as exc:
                self.error = str(exc)
                log.info("virtual camera unavailable: %s", exc)
                return
            self.error, self.device, self._size = None, self._sink.device, (width, height)

    def write(self, frame: RenderedFrame) -> None:
        if self._size is None:
            return
        image = original = frame.image
        amount = expression_amount(frame)
        lines = self.burn_in_lines
        if lines:
            image = burn_in(image, lines)
            frame = RenderedFrame(image=image, t_capture=frame.t_capture, sequence=frame.sequence,
                                  fresh=frame.fresh, timings=frame.timings, state=frame.state)
        with self._lock:
            if self._size is None:
                return
            self._sink.write(frame)
            self._last = original  # the card never carries the overlay
            if self._neutral is None or amount <= self._neutral[0] + NEUTRAL_SLACK:
                self._neutral = (min(amount, self._neutral[0]) if self._neutral else amount, original)

    def close(self) -> None:
        """The pipeline stopped: show the paused card and keep the device open."""
        with self._lock:
            if self._size is None or self._paused.is_set():
                return
            rest = self._neutral[1] if self._neutral is not None else self._last
            self._card = paused_card(rest, *self._size)
            self._neutral = None  # the next run picks its own
            self._paused.set()
            self._send_card()
            # Started before it is published, under the lock _stop_repeating takes: whoever stops it
            # (the next start, the app quitting: other threads than the stopping pipeline's) never
            # finds a thread that has not started yet.
            stop = threading.Event()
            repeater = threading.Thread(target=self._repeat, args=(stop,), name="avatarcam-paused-card", daemon=True)
            repeater.start()
            self._repeater = (repeater, stop)

    def _send_card(self) -> None:
        try:
            self._sink.write(RenderedFrame(image=self._card, t_capture=time.monotonic(), sequence=0, fresh=False))
        except SinkError as exc:
            log.warning("paused card not sent: %s", exc)

    def _repeat(self, stop: threading.Event) -> None:
        while not stop.wait(PAUSED_REPEAT_S):  # a stop ends the wait at once: Start never waits for it
            with self._lock:
                if self._size is None:
                    return
                self._send_card()

    def _stop_repeating(self) -> None:
        with self._lock:
            self._paused.clear()
            repeater, self._repeater = self._repeater, None
        if repeater is not None:
            thread, stop = repeater
            stop.set()
            thread.join(timeout=1.0)  # outside the lock, which the card thread takes to send

    def release(self) -> None:
        """Really close the device (the app quits). Idempotent."""
        self._stop_repeating()
        with self._lock:
            self._sink.close()
            self._size = None


class SwitchableRecording:
    """Records the output to an MP4 while allowed; ``switch_off()`` finishes the file at once
    (from any thread) and drops later frames. A fresh file per run."""

    name = "recording"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: VideoFileSink | None = None
        self._lock = threading.Lock()
        self._switched_off = False
        self.closed = False

    def open(self, width: int, height: int, fps: float) -> None:
        with self._lock:
            if self._file is None and not self._switched_off:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = VideoFileSink(self.path)
                self._file.open(width, height, fps)

    def write(self, frame: RenderedFrame) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(frame)

    def switch_off(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            file, self._file = self._file, None
            self._switched_off = True
        if file is not None:
            file.close()
        self.closed = True  # the file is finished and playable
