"""Animation stage: ``FaceFrame`` -> ``AvatarFrame``.

Order per update (fixed): calibrate -> filter (One Euro per channel) -> blend with idle life by
face presence -> voice takes the mouth -> split head rotation over neck and head. When the face is
lost the avatar eases to a living neutral (blinks, breathing, drift, saccades); when it returns,
tracking eases back in, so nothing ever jumps.

Voice (``update(face, now, voice)``): while the user speaks (speaking probability high) the
lip-sync's mouth controls own the mouth over the camera's mouth shapes; the camera keeps the rest of
the face. With no face (camera off, or lost for more than ``lost_after_s``) the voice drives the
mouth alone and adds small speech-timed head nods and brow raises on pitch peaks (prosody) to the
idle life (audio-only mode: a talking head from audio alone). The ownership
weight eases (``voice_ease_s``), so the hand-over between camera and voice never jumps. A voice
frame older than ``voice_stale_s`` drops out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from engine.animation.filters import OneEuroFilter
from engine.calibration import Calibration
from engine.idle import IdleMotion
from engine.packets import AvatarFrame, FaceFrame, VoiceFrame, with_timing
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES, ARKIT_INDEX

_N = len(ARKIT_BLENDSHAPES)
_BLINKS = [ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]
# The controls the voice owns while the user speaks: jaw and lips (not cheeks, brows, eyes).
MOUTH_CHANNELS = tuple(n for n in ARKIT_BLENDSHAPES if n == "jawOpen" or n.startswith("mouth"))
_MOUTH = np.array([ARKIT_INDEX[n] for n in MOUTH_CHANNELS])
# Squints, brows and sneers: MediaPipe's noisiest channels on webcam grain, and movements that never
# need the mouth's speed. A higher speed floor keeps sensor noise from opening their cutoff.
_UPPER_FACE = np.array([i for i, n in enumerate(ARKIT_BLENDSHAPES)
                        if n.startswith(("eyeSquint", "cheekSquint", "brow", "noseSneer"))])
_NO_VISEMES: MappingProxyType = MappingProxyType({})
# Audio-only brows: the inner brow lifts most on a pitch peak, the outer brows follow a little.
_BROWS = np.array([ARKIT_INDEX["browInnerUp"], ARKIT_INDEX["browOuterUpLeft"], ARKIT_INDEX["browOuterUpRight"]])
_BROW_MIX = np.array([1.0, 0.5, 0.5])
PITCH_MEAN_S = 2.0  # the speaker's running pitch level, against which a peak is measured
PITCH_PEAK = 0.25  # a pitch this far (relative) above the speaker's level lifts the brows fully


@dataclass(frozen=True, slots=True)
class AnimatorOptions:
    """Filter tuning and easing times. Defaults: a still face is still, a fast one is not late.

    One Euro cutoffs are in Hz; ``beta`` scales the cutoff with speed above ``speed_floor``
    (units/s for controls, degrees/s for angles). Tuned on MediaPipe with webcam-like noise (Gaussian
    grain, and H.264-encoded uniform temporal noise with jittered timing: tests/test_jitter.py):
    controls stay within 0.005 frame to frame on a still face, and a 2 Hz
    speech-like movement comes through less than one 30 fps frame late. Blinks get a faster
    setting: a blink lasts ~150 ms.
    """

    control_min_cutoff: float = 0.3
    control_beta: float = 8.0
    control_speed_floor: float = 1.2
    upper_face_speed_floor: float = 2.0  # squints, brows, sneers (see _UPPER_FACE)
    blink_min_cutoff: float = 0.5
    blink_beta: float = 30.0
    head_min_cutoff: float = 0.8
    head_beta: float = 0.15
    gaze_min_cutoff: float = 2.0
    gaze_beta: float = 0.3
    ease_in_s: float = 0.3
    ease_out_s: float = 0.6
    lost_after_s: float = 0.4  # no face frame for this long counts as lost (camera stalled)
    neck_share: float = 0.35  # part of the head rotation the neck takes
    voice_on: float = 0.35  # speaking probability where the voice starts to take the mouth...
    voice_full: float = 0.7  # ...and owns it fully
    voice_ease_s: float = 0.08  # time constant of the mouth hand-over
    voice_stale_s: float = 0.4  # a voice frame older than this drops out
    speech_nod_deg: float = 2.5  # audio-only: head pitch with speech energy
    speech_brow: float = 0.45  # audio-only: brow raise on a pitch peak
    calibration: Calibration = field(default_factory=Calibration)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Animator:
    """Turns perception into avatar controls. Not thread-safe: one animator per render loop.

    ``update(face, now)`` is called once per output frame; ``face`` is the newest perception
    result since the last call, or None when nothing new arrived (the state then keeps easing
    and idling, so re-rendered frames stay alive).
    """

    def __init__(self, options: AnimatorOptions | None = None, idle: IdleMotion | None = None) -> None:
        self.options = options = options or AnimatorOptions()
        min_cutoff = np.full(_N, options.control_min_cutoff)
        beta = np.full(_N, options.control_beta)
        min_cutoff[_BLINKS] = options.blink_min_cutoff
        beta[_BLINKS] = options.blink_beta
        speed_floor = np.full(_N, options.control_speed_floor)
        speed_floor[_UPPER_FACE] = options.upper_face_speed_floor
        self._controls_filter = OneEuroFilter(_N, min_cutoff, beta, speed_floor=speed_floor)
        self._head_filter = OneEuroFilter(3, options.head_min_cutoff, options.head_beta)
        self._gaze_filter = OneEuroFilter(2, options.gaze_min_cutoff, options.gaze_beta)
        self._idle = idle or IdleMotion()
        self.set_calibration(options.calibration)
        self._controls = np.zeros(_N)
        self._head = np.zeros(3)
        self._gaze = np.zeros(2)
        self._landmark_face: FaceFrame | None = None  # the newest face with landmarks, for landmark-fitted avatars
        self._presence = 0.0  # 0 = idle life only, 1 = tracking only
        self._last_face_time: float | None = None
        self._tracking = False
        self._last_t_capture = 0.0
        self._last_now: float | None = None
        self._sequence = 0
        self._voice: VoiceFrame | None = None
        self._voice_weight = 0.0
        self._nod = 0.0
        self._pitch_mean = 0.0
        self._brow = 0.0

    def set_calibration(self, calibration: Calibration) -> None:
        self._neutral, self._gain = calibration.arrays()
        self._head_neutral = np.asarray(calibration.head_neutral, dtype=np.float64)

    @property
    def presence(self) -> float:
        """How much tracking (vs idle life) drives the avatar now, 0..1."""
        return self._presence

    @property
    def voice_weight(self) -> float:
        """How much the voice owns the mouth now, 0..1."""
        return self._voice_weight

    def update(self, face: FaceFrame | None, now: float, voice: VoiceFrame | None = None) -> AvatarFrame:
        start = time.perf_counter()
        if voice is not None:
            self._voice = voice
        if face is not None:
            self._last_t_capture = face.t_capture
            if face.present:
                self._take_face(face)
        tracking = (face is None or face.present) and self._last_face_time is not None and (
            now - self._last_face_time <= self.options.lost_after_s)
        self._tracking = tracking
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._ease_presence(tracking, now)
        self._ease_voice(dt, now)
        base = face.timings if face is not None else {}
        return self._compose(now, base, start)

    def _take_face(self, face: FaceFrame) -> None:
        t = face.t_capture
        if not self._tracking:
            # Returning after a loss: start the filters afresh; the presence ramp hides the step.
            for f in (self._controls_filter, self._head_filter, self._gaze_filter):
                f.reset()
        raw = np.fromiter((face.blendshapes.get(n, 0.0) for n in ARKIT_BLENDSHAPES), dtype=np.float64, count=_N)
        calibrated = np.clip((raw - self._neutral) / (1.0 - self._neutral) * self._gain, 0.0, 1.0)
        self._controls = np.clip(self._controls_filter(calibrated, t), 0.0, 1.0)
        self._head = self._head_filter(np.asarray(face.head_rotation) - self._head_neutral, t)
        self._gaze = self._gaze_filter(np.asarray(face.gaze), t)
        self._landmark_face = face if face.landmarks is not None else None
        self._last_face_time = t

    def _ease_presence(self, tracking: bool, now: float) -> None:
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        if tracking:
            self._presence = min(1.0, self._presence + dt / self.options.ease_in_s)
        else:
            self._presence = max(0.0, self._presence - dt / self.options.ease_out_s)

    def _voice_fresh(self, now: float) -> bool:
        return self._voice is not None and now - self._voice.t_capture <= self.options.voice_stale_s

    def _ease_voice(self, dt: float, now: float) -> None:
        o = self.options
        target = 0.0
        if self._voice_fresh(now):
            speaking = (self._voice.speaking_probability - o.voice_on) / (o.voice_full - o.voice_on)  # type: ignore[union-attr]
            # Without a face the voice is all there is: it owns the mouth (a silent voice rests it).
            target = max(min(1.0, max(0.0, speaking)), 1.0 - _smoothstep(self._presence))
        alpha = 1.0 - np.exp(-dt / o.voice_ease_s) if dt > 0 else 0.0
        self._voice_weight += alpha * (target - self._voice_weight)
        level = 0.0
        if self._voice_fresh(now):
            level = self._voice.mouth.get("jawOpen", 0.0) * min(1.0, self._voice.speaking_probability * 1.5)  # type: ignore[union-attr]
        self._nod += (1.0 - np.exp(-dt / 0.25) if dt > 0 else 0.0) * (level - self._nod)
        lift = 0.0
        if self._voice_fresh(now) and self._voice.pitch_hz > 0.0 and self._voice.speaking_probability > 0.5:  # type: ignore[union-attr]
            pitch = self._voice.pitch_hz  # type: ignore[union-attr]
            if self._pitch_mean == 0.0:
                self._pitch_mean = pitch
            self._pitch_mean += (1.0 - np.exp(-dt / PITCH_MEAN_S) if dt > 0 else 0.0) * (pitch - self._pitch_mean)
            lift = min(1.0, max(0.0, (pitch / self._pitch_mean - 1.0) / PITCH_PEAK))
        self._brow += (1.0 - np.exp(-dt / 0.15) if dt > 0 else 0.0) * (lift - self._brow)

    def _compose(self, now: float, timings, start: float) -> AvatarFrame:
        w = _smoothstep(self._presence)
        controls = self._controls * w
        controls[_BLINKS] += (1.0 - w) * self._idle.blink(now)
        controls[_BROWS] = np.minimum(1.0, controls[_BROWS] + (1.0 - w) * self.options.speech_brow * self._brow * _BROW_MIX)
        wv = self._voice_weight
        t_voice, visemes = 0.0, _NO_VISEMES
        if wv > 0.0 and self._voice is not None:
            mouth = self._voice.mouth
            voice_mouth = np.fromiter((mouth.get(n, 0.0) for n in MOUTH_CHANNELS), dtype=np.float64, count=len(_MOUTH))
            controls[_MOUTH] = controls[_MOUTH] * (1.0 - wv) + voice_mouth * wv
            t_voice, visemes = self._voice.t_mouth, self._voice.visemes
        head = self._head * w + np.asarray(self._idle.head(now)) * (1.0 - w)
        # Audio-only: a talking head nods a little with its speech (chin up on stressed syllables).
        head[1] += (1.0 - w) * self.options.speech_nod_deg * self._nod
        gaze = self._gaze * w + np.asarray(self._idle.gaze(now)) * (1.0 - w)
        share = self.options.neck_share
        self._sequence += 1
        return AvatarFrame(
            t_capture=self._last_t_capture if self._last_t_capture else now,
            sequence=self._sequence,
            controls=MappingProxyType(dict(zip(ARKIT_BLENDSHAPES, controls.tolist()))),
            head=tuple((head * (1.0 - share)).tolist()),
            neck=tuple((head * share).tolist()),
            eyes=(float(gaze[0]), float(gaze[1])),
            face_present=self._tracking,
            timings=with_timing(timings, animate=(time.perf_counter() - start) * 1000.0),
            voice_weight=float(wv),
            t_voice=t_voice,
            visemes=visemes,
            landmarks=self._landmark_face.landmarks if self._tracking and self._landmark_face is not None else None,
            image_size=self._landmark_face.image_size if self._landmark_face is not None else (0, 0),
        )
