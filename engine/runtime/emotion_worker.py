"""The emotion stage of the live pipeline: face and voice in, fused state out, layer applied.

The camera path hands faces over with ``submit`` (tracking thread): the stage's own worker thread
reads their emotion, so the classifier never delays a frame on its way to the virtual camera (the
fusion smooths over time anyway, and a face the worker had no time for is replaced by the newer).
A face source without pixels (the demo) calls ``add_face`` directly: FACS only. The render thread
calls ``apply`` once per output frame, which also takes that frame's voice reading. Switching the
stage off (consent withdrawn) takes effect on the next frame and drops what it had read.
An emotion *hint* (``set_hint``: the ``render --emotion`` flag, a speak request's emotion) is given,
not read from anyone, so it shows without consent to analysis and replaces the voice's reading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from engine.calibration import Calibration
from engine.errors import AvatarcamError
from engine.fusion.fuser import EmotionFuser, EmotionState
from engine.packets import AvatarFrame, FaceFrame, VoiceFrame
from engine.perception.face_emotion.estimator import FacialEmotion
from engine.perception.face_emotion.facs import facs_emotion
from engine.runtime.slots import NewestSlot
from engine.vocabulary.emotions import EMOTIONS, Emotion, EmotionEstimate

log = logging.getLogger(__name__)
READ_INTERVAL_S = 0.06  # at most ~16 facial-emotion readings a second: every other frame at 30 fps


class EmotionStage:
    """Thread-safe. ``close`` stops the worker (idempotent). ``on_timing(ms)`` gets each reading's cost."""

    def __init__(self, enabled: bool = False, expressiveness: float = 1.0,
                 on_timing: Callable[[float], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._fuser = EmotionFuser()
        self._pending: NewestSlot[tuple[FaceFrame, np.ndarray]] = NewestSlot()
        self._worker: threading.Thread | None = None
        self.on_timing = on_timing
        self.enabled = enabled
        self.expressiveness = expressiveness
        self.latest: EmotionState | None = None
        self.error = ""  # why part of the stage is off, for the status line
        self._last_submitted = -float("inf")
        self._calibration: Calibration | None = None
        self._calibration_version = 0  # each worker thread's classifier catches up with it
        self._hint: np.ndarray | None = None  # probabilities of the hinted emotion

    def set_hint(self, emotion: Emotion | None) -> None:
        """Show ``emotion`` from the next frame on (None: back to what is read, if anything)."""
        with self._lock:
            self._hint = None if emotion is None else np.eye(len(EMOTIONS))[EMOTIONS.index(emotion)]

    def submit(self, face: FaceFrame, image: np.ndarray) -> None:
        """Hand a tracked face and its image to the worker; returns at once. Faces closer than
        ``READ_INTERVAL_S`` to the last one read are skipped: the fusion smooths over 0.15 s anyway,
        and each reading costs CPU the renderer and the tracker need."""
        if not self.enabled or not face.present or face.t_capture - self._last_submitted < READ_INTERVAL_S:
            return
        self._last_submitted = face.t_capture
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="avatarcam-emotion", daemon=True)
                self._worker.start()
        self._pending.put((face, image))

    def _work(self) -> None:
        while (item := self._pending.get()) is not None:
            spent = self.add_face(*item)
            if self.on_timing is not None and spent:
                self.on_timing(spent)

    def close(self) -> None:
        self._pending.close()
        if self._worker is not None:
            self._worker.join(timeout=2.0)

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = enabled
            if not enabled:  # consent withdrawn: forget what was read
                self._fuser = EmotionFuser()
                self.latest = None

    def set_calibration(self, calibration: Calibration | None) -> None:
        """The user's resting face and ranges, for the classifier and the FACS reading."""
        with self._lock:
            self._calibration = calibration
            self._calibration_version += 1

    def set_expressiveness(self, value: float) -> None:
        self.expressiveness = float(np.clip(value, 0.0, 2.0))

    def add_face(self, face: FaceFrame, image: np.ndarray | None = None) -> float:
        """Read the face's emotion now (FER on ``image`` when given, FACS always); returns the ms spent."""
        if not self.enabled or not face.present:
            return 0.0
        facial = self._facial() if image is not None and face.landmarks is not None else None
        if facial is not None:
            estimate = facial.estimate(image, face)
            spent = facial.last_ms
        else:  # no pixels (the demo) or no classifier: the blendshapes are all there is
            estimate, spent = facs_emotion(face.blendshapes, face.t_capture, calibrated=image is None), 0.0
        if estimate is not None:
            self._fuser.add_face(estimate, face.landmarks)
        return spent

    def _facial(self) -> FacialEmotion | None:
        """This thread's classifier; None (FACS only, with ``error`` saying why) if it cannot load."""
        facial = getattr(self._local, "facial", None)
        if facial is None and not self.error:
            try:
                facial = self._local.facial = FacialEmotion()
                self._local.version = -1
            except AvatarcamError as exc:
                self.error = f"facial emotion classifier off: {exc} Reading emotion from blendshapes only."
                log.warning(self.error)
        if facial is not None and self._local.version != self._calibration_version:
            with self._lock:
                self._local.version = self._calibration_version
                facial.set_calibration(self._calibration)
        return facial

    def apply(self, frame: AvatarFrame, voice: VoiceFrame | None, now: float) -> tuple[AvatarFrame, EmotionState | None]:
        """Fuse (with this frame's voice reading) and add the emotion layer to ``frame``."""
        from engine.animation.emotion_layer import apply_emotion

        hint = self._hint
        if not self.enabled and hint is None:
            return frame, None
        if voice is not None:
            read = voice.emotion if self.enabled and hint is None else None
            self._fuser.add_voice(read, voice.speaking_probability, voice.t_capture, voice.clipping)
        if hint is not None:
            self._fuser.add_hint(EmotionEstimate(now, hint, 1.0, "hint"))
        state = self._fuser.update(now)
        self.latest = state
        return apply_emotion(frame, state, self.expressiveness), state
