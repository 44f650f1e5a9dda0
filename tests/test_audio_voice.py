"""Voice analysis: SenseVoice output parsing and fallback, prosody, the analyser on bad input, and
the animation stage's mouth ownership and audio-only mode."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest
from conftest import shared_file

from engine.animation.animator import MOUTH_CHANNELS, Animator
from engine.capture.decode import read_audio
from engine.capture.resample import RATE, to_mono_16k
from engine.packets import FaceFrame, VoiceFrame
from engine.perception.voice.prosody import EMOTIONS, ProsodyEstimator, emotion_scores, yin_pitch
from engine.perception.voice.sensevoice import SenseVoiceWorker, parse_output, parse_rich_text
from engine.perception.voice.vad import EnergyVad
from engine.perception.voice.voice import VoiceAnalyzer, VoiceOptions

# Strings as SenseVoice-Small (funasr 1.1, model iic/SenseVoiceSmall) prints them.
RECORDED = [
    ("<|en|><|HAPPY|><|Speech|><|woitn|>i am so glad you came", ("en", "happy", "speech", "i am so glad you came")),
    ("<|zh|><|NEUTRAL|><|Speech|><|withitn|>欢迎大家来体验达摩院推出的语音识别模型。", ("zh", "neutral", "speech", "欢迎大家来体验达摩院推出的语音识别模型。")),
    ("<|en|><|EMO_UNKNOWN|><|Laughter|><|woitn|>", ("en", "", "laughter", "")),
    ("<|ja|><|SAD|><|Cry|><|woitn|>", ("ja", "sad", "cry", "")),
    ("<|nospeech|><|EMO_UNKNOWN|><|BGM|><|woitn|>", ("", "", "music", "")),
    ("<|en|><|ANGRY|><|Speech|><|woitn|>stop that", ("en", "angry", "speech", "stop that")),
    ("<|yue|><|SURPRISED|><|Applause|><|woitn|>", ("yue", "surprised", "applause", "")),
    ("<|en|><|FEARFUL|><|Cough|><|woitn|>what", ("en", "fearful", "cough", "what")),
    ("<|ko|><|DISGUSTED|><|Sneeze|><|woitn|>", ("ko", "disgusted", "sneeze", "")),
    ("<|en|><|NEUTRAL|><|Breath|><|woitn|>", ("en", "neutral", "breath", "")),
    ("plain text with no tags", ("", "", "", "plain text with no tags")),
]


@pytest.mark.parametrize("text,expected", RECORDED)
def test_sensevoice_rich_text_is_parsed(text, expected):
    result = parse_rich_text(text)
    assert (result.language, result.emotion, result.event, result.text) == expected


def test_funasr_generate_output_shape_is_accepted():
    result = parse_output([{"key": "utt", "text": "<|en|><|HAPPY|><|Speech|><|woitn|>hello"}])
    assert result.emotion == "happy" and result.valence_arousal[0] > 0
    assert parse_output([]).emotion == ""


def test_without_funasr_or_model_sensevoice_reports_why_and_voice_uses_prosody(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_funasr(name, *args, **kwargs):
        if name == "funasr" or name.startswith("funasr."):
            raise ImportError("No module named 'funasr'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_funasr)
    worker = SenseVoiceWorker()
    assert worker.start() is False and not worker.available
    assert "funasr is not installed" in worker.status and "prosody" in worker.status
    analyzer = VoiceAnalyzer(VoiceOptions(use_silero=False), vad=EnergyVad(), sensevoice=worker)
    frame = _last_frame(analyzer, read_audio(shared_file("media/speech_radio31.wav")))
    assert frame.emotion.source == "prosody" and "funasr is not installed" in frame.status
    worker.close()


def test_yin_finds_the_pitch_of_a_voice_like_tone():
    t = np.arange(640) / RATE
    for f0 in (90.0, 150.0, 240.0):
        wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)).astype(np.float32)
        assert yin_pitch(wave)[0] == pytest.approx(f0, rel=0.02)
    assert yin_pitch(np.random.default_rng(0).standard_normal(640).astype(np.float32))[0] == 0.0


def test_prosody_arousal_rises_with_loud_high_fast_lively_speech():
    def voice(f0, amplitude, syllables_hz, seconds=3.0, intonation=0.05):
        t = np.arange(int(seconds * RATE)) / RATE
        f = f0 * (1 + intonation * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(f) / RATE
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * syllables_hz * t)
        return (amplitude * envelope * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)

    prosody = ProsodyEstimator()
    calm = voice(120, 0.05, 3.0, 6.0)
    for i in range(0, len(calm), 160):
        prosody.process(calm[i:i + 160], 1.0)
    calm_estimate = prosody.estimate()
    excited = voice(190, 0.4, 6.0, intonation=0.12)  # aroused speech also swings its pitch wider
    for i in range(0, len(excited), 160):
        prosody.process(excited[i:i + 160], 1.0)
    excited_estimate = prosody.estimate()
    assert excited_estimate.arousal > calm_estimate.arousal + 0.3
    assert 0.0 < excited_estimate.confidence <= 0.6
    assert excited_estimate.pitch_hz == pytest.approx(190, rel=0.1)
    assert sum(excited_estimate.scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_emotion_scores_fall_back_to_neutral_without_confidence():
    assert emotion_scores(0.7, 0.5, 0.0)["neutral"] == pytest.approx(1.0)
    scores = emotion_scores(0.7, 0.5, 1.0)
    assert max(scores, key=scores.get) == "happy" and set(scores) == set(EMOTIONS)


def _last_frame(analyzer: VoiceAnalyzer, samples: np.ndarray, t0: float = 100.0) -> VoiceFrame:
    frame = None
    for start in range(0, len(samples), 160):
        frame = analyzer.process(samples[start:start + 160], t0 + start / RATE) or frame
    assert frame is not None
    return frame


def _frames(analyzer: VoiceAnalyzer, samples: np.ndarray) -> list[VoiceFrame]:
    out = []
    for start in range(0, len(samples), 160):
        frame = analyzer.process(samples[start:start + 160], start / RATE)
        if frame is not None:
            out.append(frame)
    return out


def test_bad_input_never_breaks_the_analyser():
    rng = np.random.default_rng(3)
    t = np.arange(2 * RATE) / RATE
    cases = {
        "silence": np.zeros(2 * RATE, np.float32),
        "clipping": np.clip(3 * np.sin(2 * np.pi * 150 * t), -1, 1).astype(np.float32),
        "8 kHz": to_mono_16k(np.sin(2 * np.pi * 200 * np.arange(16000) / 8000).astype(np.float32), 8000),
        "192 kHz 6 ch": to_mono_16k(np.tile(np.sin(2 * np.pi * 200 * np.arange(192000) / 192000)[:, None], 6), 192000),
        "nan": np.full(RATE, np.nan, np.float32),
        "music": (0.3 * sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392)) / 3
                  * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 2 * t))) + 0.01 * rng.standard_normal(len(t))).astype(np.float32),
    }
    for name, samples in cases.items():
        analyzer = VoiceAnalyzer(VoiceOptions(use_silero=False), vad=EnergyVad())
        frames = _frames(analyzer, samples)
        assert frames, name
        for frame in frames:
            assert all(0.0 <= v <= 1.0 for v in frame.mouth.values()), name
            assert 0.0 <= frame.speaking_probability <= 1.0
        if name in ("silence", "nan"):
            assert max(f.mouth["jawOpen"] for f in frames) == 0.0, name
        if name == "clipping":
            assert "clipping" in frames[-1].status


def test_speech_through_the_analyser_with_silero():
    from engine.models import ModelManager

    if ModelManager().find("silero_vad") is None:
        pytest.skip("Silero VAD model not downloaded (tests/test_vad.py fetches it)")
    analyzer = VoiceAnalyzer()
    frames = _frames(analyzer, read_audio(shared_file("media/speech_imagine.wav")))
    speaking = np.array([f.speaking_probability for f in frames])
    assert speaking[:30].max() < 0.5 and np.mean(speaking > 0.5) > 0.6
    assert frames[-1].emotion.source == "prosody" and "energy detector" not in frames[-1].status
    assert frames[0].t_mouth == pytest.approx(0.025)


# --- animation: mouth ownership and audio-only mode -----------------------------------------------

def _voice(t: float, speaking: float, jaw: float) -> VoiceFrame:
    mouth = {name: 0.0 for name in MOUTH_CHANNELS}
    mouth.update(jawOpen=jaw, mouthFunnel=jaw / 2)
    return VoiceFrame(t_capture=t, speaking_probability=speaking, mouth=MappingProxyType(mouth), t_mouth=t - 0.01)


def _face(t: float, i: int) -> FaceFrame:
    return FaceFrame(t_capture=t, index=i, present=True, confidence=1.0,
                     blendshapes={"jawOpen": 0.1, "browInnerUp": 0.6, "mouthSmileLeft": 0.5}, head_rotation=(10.0, 0.0, 0.0))


def test_visemes_own_the_mouth_while_speaking_and_the_camera_keeps_the_rest():
    animator = Animator()
    state = None
    for i in range(60):
        t = i / 30
        state = animator.update(_face(t, i), t, _voice(t, 0.95, 0.6))
    assert animator.voice_weight > 0.95
    assert state.controls["jawOpen"] == pytest.approx(0.6, abs=0.03)
    assert state.controls["mouthSmileLeft"] < 0.05  # the voice's mouth, not the camera's smile
    assert state.controls["browInnerUp"] > 0.4  # the camera keeps the brows
    assert state.t_voice == pytest.approx(59 / 30 - 0.01)
    for i in range(60, 90):  # the user stops talking: the camera's mouth comes back
        t = i / 30
        state = animator.update(_face(t, i), t, _voice(t, 0.02, 0.0))
    assert animator.voice_weight < 0.05
    assert state.controls["mouthSmileLeft"] > 0.3


def test_audio_only_mode_voice_drives_the_mouth_with_blinks_and_returns_without_a_jump():
    animator = Animator()
    jaws, blinks, heads = [], [], []
    for i in range(300):  # 10 s, no face at all: voice alone
        t = i / 30
        jaw = 0.5 * max(0.0, np.sin(2 * np.pi * 2 * t))
        state = animator.update(FaceFrame(t, i, present=False), t, _voice(t, 0.9, jaw))
        jaws.append(state.controls["jawOpen"])
        blinks.append(state.controls["eyeBlinkLeft"])
        heads.append(state.head)
    assert max(jaws) > 0.4 and np.std(jaws) > 0.1
    assert max(blinks) > 0.8  # idle blinks go on
    assert not state.face_present
    previous = state
    steps = []
    for i in range(300, 330):  # the face returns
        t = i / 30
        state = animator.update(_face(t, i), t, _voice(t, 0.05, 0.0))
        steps.append(abs(state.head[0] - previous.head[0]))
        previous = state
    assert max(steps) < 2.0  # degrees per frame: eased, no jump
    assert state.head[0] == pytest.approx(10.0 * (1 - animator.options.neck_share), abs=0.5)


def test_a_stale_voice_drops_out():
    animator = Animator()
    animator.update(FaceFrame(0.0, 0, present=False), 0.0, _voice(0.0, 0.9, 0.5))
    for i in range(1, 40):
        state = animator.update(FaceFrame(i / 30, i, present=False), i / 30)
    assert state.controls["jawOpen"] < 0.01 and animator.voice_weight < 0.01


def test_voice_frames_feed_the_fusion_stage():
    from engine.fusion.fuser import EmotionFuser
    from engine.vocabulary.emotions import EMOTIONS as VOCABULARY

    analyzer = VoiceAnalyzer(VoiceOptions(use_silero=False), vad=EnergyVad())
    frame = _last_frame(analyzer, read_audio(shared_file("media/speech_radio31.wav")))
    assert frame.emotion.source == "prosody" and len(frame.emotion.probabilities) == len(VOCABULARY)
    assert frame.emotion.probabilities.sum() == pytest.approx(1.0, abs=1e-3)
    assert frame.emotion.t_capture == frame.t_capture and -1 <= frame.valence <= 1 and -1 <= frame.arousal <= 1
    fuser = EmotionFuser()
    fuser.add_voice(frame.emotion, frame.speaking_probability, frame.t_capture)
    state = fuser.update(frame.t_capture + 0.05)
    assert state.mode == "audio_only" and state.speaking_probability == pytest.approx(frame.speaking_probability)
