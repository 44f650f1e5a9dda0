"""Dynamic resolution: the render thread draws fewer pixels while its frames stop fitting their slot.

On a CPU rasteriser a frame's cost goes with the pixels drawn, and on two cores it also goes with
whatever else wants a core at that moment (the tracker, the emotion reading, another program): a
render that takes 24 ms as a rule takes 50 now and then, and the output misses a frame. The governor
watches the render times and draws at ``REDUCED`` of the output size (the picture is scaled up to
it) while their 95th percentile comes close to the frame period, and at full size again once the
full-size cost, predicted from the reduced one, fits with room to spare. On a GPU (3 ms a frame) it
never acts. Pure logic, no threads: the render loop reports each render and applies what it returns.
"""

from __future__ import annotations

from collections import deque

import numpy as np

FULL = 1.0
REDUCED = 0.75  # 960x540 for a 720p output: ~40 % less CPU per frame on llvmpipe
WINDOW = 90  # renders looked at (3 s at 30 fps)
REDUCE_AT = 0.85  # draw smaller when the window's p95 exceeds this share of the period
RESTORE_AT = 0.6  # draw full size again when the predicted full-size p95 is under this share
# Full-size render time over reduced, measured on llvmpipe at 720p (17.6 / 11.1 ms wall): a constant,
# since the two are never measured under the same load.
FULL_COST_RATIO = 1.6
HOLD_S = 5.0  # no new decision for this long after a change (the window refills at the new size)


class ResolutionGovernor:
    """Decides the resolution scale from render times; ``scale`` is the current one."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.scale = FULL
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._changed_at: float | None = None

    def rendered(self, seconds: float, now: float) -> float | None:
        """A render at the current scale took ``seconds``; returns the scale to draw at from now on
        when it should change, else None."""
        self._times.append(seconds)
        if len(self._times) < WINDOW or (self._changed_at is not None and now - self._changed_at < HOLD_S):
            return None
        p95 = float(np.percentile(np.asarray(self._times), 95))
        if self.scale == FULL and p95 > REDUCE_AT * self.period:
            return self._change(REDUCED, now)
        if self.scale == REDUCED and p95 * FULL_COST_RATIO < RESTORE_AT * self.period:
            return self._change(FULL, now)
        return None

    def _change(self, scale: float, now: float) -> float:
        self.scale = scale
        self._changed_at = now
        self._times.clear()
        return scale
