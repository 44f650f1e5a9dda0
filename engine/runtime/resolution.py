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
from collections.abc import Iterable

import numpy as np

FULL = 1.0
REDUCED = 0.75  # 960x540 for a 720p output: ~40 % less CPU per frame on llvmpipe
REDUCE_AT = 0.85  # draw smaller when the recent renders' p95 exceeds this share of the period
RECENT = 30  # renders a reduction looks at (1 s at 30 fps): cut before the tail costs a frame
RESTORE_AT = 0.6  # draw full size again when the predicted full-size p95 is under this share
SETTLED = 90  # renders a restore looks at (3 s): restore only on evidence
# Full-size render time over reduced, measured on llvmpipe at 720p (17.6 / 11.1 ms wall): a constant,
# since the two are never measured under the same load.
FULL_COST_RATIO = 1.6
HOLD_S = 5.0  # the least time drawn smaller before a restore
# A reduction this soon after a restore means full size did not fit after all: the next restore
# waits twice as long (up to HOLD_MAX_S), so a machine on the edge does not switch back and forth.
FAILED_RESTORE_S = 30.0
HOLD_MAX_S = 120.0


class ResolutionGovernor:
    """Decides the resolution scale from render times; ``scale`` is the current one."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.scale = FULL
        self._times: deque[float] = deque(maxlen=SETTLED)
        self._changed_at = -float("inf")
        self._restored_at = -float("inf")
        self._hold = HOLD_S

    def rendered(self, seconds: float, now: float) -> float | None:
        """A render at the current scale took ``seconds``; returns the scale to draw at from now on
        when it should change, else None."""
        times = self._times
        times.append(seconds)
        if self.scale == FULL:
            if len(times) >= RECENT and _p95(list(times)[-RECENT:]) > REDUCE_AT * self.period:
                if now - self._restored_at < FAILED_RESTORE_S:
                    self._hold = min(HOLD_MAX_S, 2 * self._hold)
                return self._change(REDUCED, now)
        elif (len(times) >= SETTLED and now - self._changed_at >= self._hold
              and _p95(times) * FULL_COST_RATIO < RESTORE_AT * self.period):
            self._restored_at = now
            return self._change(FULL, now)
        return None

    def _change(self, scale: float, now: float) -> float:
        self.scale = scale
        self._changed_at = now
        self._times.clear()
        return scale


def _p95(times: Iterable[float]) -> float:
    return float(np.percentile(np.fromiter(times, float), 95))
