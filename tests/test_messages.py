"""The JSON messages: every emitted message validates against its versioned schema."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from engine.animation.animator import Animator
from engine.capture.demo import performance_at
from engine.fusion.fuser import EmotionFuser
from engine.idle import IdleMotion
from engine.outputs.messages import MessageFactory, load_schema
from engine.packets import FaceFrame
from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate


def demo_states(seconds: float = 3.0):
    """Animation and emotion states from the demo performance (varied, with head motion)."""
    animator, fuser, idle = Animator(), EmotionFuser(), IdleMotion()
    for i in range(int(seconds * 30)):
        t = i / 30
        controls, head = performance_at(t * 8, idle)  # sweep through the whole performance
        frame = animator.update(FaceFrame(t, i, True, 1.0, controls, head), t)
        p = np.full(len(EMOTIONS), 0.1)
        p[i % len(EMOTIONS)] = 0.4
        fuser.add_face(EmotionEstimate(t, p / p.sum(), 0.8, "face"))
        yield frame, fuser.update(t)


@pytest.mark.parametrize("kind", ["emotion_update", "avatar_frame"])
def test_every_message_validates(kind):
    validator = jsonschema.Draft202012Validator(load_schema(kind))
    factory = MessageFactory("test-session")
    sequences = []
    for frame, state in demo_states():
        message = factory.emotion_update(state, frame) if kind == "emotion_update" else factory.avatar_frame(frame, "aa", 0.7)
        validator.validate(json.loads(json.dumps(message)))  # as a client receives it
        sequences.append(message["sequence"])
    assert sequences == list(range(1, len(sequences) + 1))


def test_schema_rejects_a_broken_message():
    validator = jsonschema.Draft202012Validator(load_schema("emotion_update"))
    frame, state = next(demo_states(0.1))
    message = MessageFactory().emotion_update(state, frame)
    message["payload"]["emotion"] = "bored"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(message)
