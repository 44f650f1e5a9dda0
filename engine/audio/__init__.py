"""Voice: audio sources, resampling, lip-sync, voice activity, prosody and speech emotion."""

from .lipsync import MOUTH_CONTROLS, VISEMES, LipSync, LipSyncOptions, MouthFrame, analyse_signal, lipsync_file
from .resample import RATE, Resampler, to_mono_16k
from .ring import AudioRing
from .sources import AudioChunk, AudioFileSource, MicrophoneInfo, MicrophoneSource, list_microphones
from .voice import VoiceAnalyzer, VoiceOptions, VoiceStage

__all__ = ["MOUTH_CONTROLS", "RATE", "VISEMES", "AudioChunk", "AudioFileSource", "AudioRing", "LipSync",
           "LipSyncOptions", "MicrophoneInfo", "MicrophoneSource", "MouthFrame", "Resampler", "VoiceAnalyzer",
           "VoiceOptions", "VoiceStage", "analyse_signal", "lipsync_file", "list_microphones", "to_mono_16k"]
