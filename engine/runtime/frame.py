"""One output frame: animate (with the newest face and voice), add the emotion layer, retarget, render.

Shared by the live output loop (``pipeline.py``, on its clock) and the offline renderer
(``offline.py``, on media time), so both show exactly the same avatar for the same inputs.
"""

from __future__ import annotations

import time

from engine.animation.animator import Animator
from engine.avatar.retarget import AvatarBinding
from engine.avatar.spring_bone import SpringBoneRig
from engine.fusion.fuser import EmotionState
from engine.packets import FaceFrame, RenderedFrame, VoiceFrame, with_timing
from engine.render import AvatarRenderer
from engine.render.enhance import Enhancer
from engine.runtime.emotion_worker import EmotionStage


def animate_and_render(animator: Animator, emotion: EmotionStage, binding: AvatarBinding, renderer: AvatarRenderer,
                       face: FaceFrame | None, voice: VoiceFrame | None, now: float, sequence: int,
                       springs: SpringBoneRig | None = None,
                       enhancer: Enhancer | None = None) -> tuple[RenderedFrame, EmotionState | None, float]:
    """The frame for time ``now`` (``face``/``voice``: what arrived since the last frame, or None),
    the fused emotion, and the enhancer's ms (0 when none ran). ``springs`` steps the avatar's hair
    and accessories; ``enhancer`` (the renderer then draws RGBA) runs on the image."""
    state, emotion_state = emotion.apply(animator.update(face, now, voice), voice, now)
    start = time.perf_counter()
    pose = binding.pose(state)
    if springs is not None:
        pose = springs.apply(pose, now)
    image = renderer.render(pose) if enhancer is None else renderer.render_rgba(pose)
    render_ms = (time.perf_counter() - start) * 1000.0
    enhance_ms = 0.0
    if enhancer is not None:
        image, enhance_ms = enhancer.apply(image)
    frame = RenderedFrame(image=image, t_capture=state.t_capture, sequence=sequence, fresh=face is not None,
                          timings=with_timing(state.timings, render=render_ms), state=state)
    return frame, emotion_state, enhance_ms
