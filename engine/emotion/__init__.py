"""Emotion perception: facial emotion (FER classifier + FACS-style estimator) and its vocabulary."""

from engine.emotion.vocabulary import CIRCUMPLEX, EMOTIONS, EmotionEstimate, valence_arousal

__all__ = ["CIRCUMPLEX", "EMOTIONS", "EmotionEstimate", "valence_arousal"]
