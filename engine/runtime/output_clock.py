"""The output clock: when the render thread sends the next frame, fresh or filled in.

Pure timing logic, no threads and no sleeping: the render loop asks it when a waiting result may go
out (``release``) and when to fill a gap if none comes (``filler_time``), then tells it what went
out (``sent``). Tests drive it with synthetic arrival times.

The rate comes from an ideal grid of slots, one per output period. A fresh result may go out up
to ``LEAD`` of a period before its slot, a filler waits up to ``LAG`` after it, and the grid is
re-phased toward the arrivals (a software phase-locked loop) within ``PHASE_RANGE`` periods of the
ideal clock, so the count of frames never strays more than a few from the exact output rate, while a
camera at any rate keeps landing inside the window and goes out the moment its result exists:

* a camera slower than the output (15, 24, 25 fps on a 30 fps output) leaves gaps; a gap is filled
  on schedule, or, when the next result is expected while that filler would still be rendering,
  as early as the steadiness bound allows, so the filler never delays the next result;
* a camera faster than the output (60 fps) has every other result replaced by the newer one, and
  the grid locks so that the result that goes out waits only ``FAST_HOLD``;
* a jittery camera's early result waits just so long that the next one, if late, still comes
  within ``MAX_GAP`` (else a filler the input did not need would put the output a frame ahead).

No two frames go out closer than ``MIN_GAP`` of a period, and no gap exceeds ``MAX_GAP``, which is
below the 1.5 periods that count as a missed frame.
"""

from __future__ import annotations

# Steadiness bounds, in output periods.
MIN_GAP = 0.5  # the closest two frames may follow each other
MAX_GAP = 1.3  # the longest gap before a filler goes out (1.5 counts as missed: room for a late wake-up)
# Rate bounds, in frames against the ideal grid: a fresh result may go out up to LEAD before its
# slot (else it waits); a filler waits up to LAG after its slot for a result that is expected then.
LEAD = 0.7
LAG = 0.3
# A filler is moved earlier when the next result is expected less than this after it (in periods):
# rendering the filler would otherwise still occupy the render thread when the result arrives.
FILLER_ROOM = 0.65
# Phase-locked loop: each fresh result moves the grid by PHASE_GAIN of its phase error, at most
# PHASE_STEP of a period. Results should land PHASE_TARGET before their slot, inside the window with
# room both ways. The grid stays within +-PHASE_RANGE periods of the ideal clock, so the count of
# frames sent never strays more than that from the exact rate, however long the clock runs (a camera
# a little off the output rate is followed until then).
PHASE_GAIN = 0.25
PHASE_STEP = 0.1
PHASE_TARGET = -0.2
PHASE_RANGE = 2.0
# A camera faster than the output (60 fps on 30) gives two or more results per slot, all but one of
# them replaced by a newer one. The grid locks so that the window opens FAST_HOLD after a result:
# that one goes out (after FAST_HOLD), the one before it waited there and was replaced. The error is
# taken to the nearer result, so tracking noise never walks the lock from one result to the next.
FAST_SOURCE = 0.75  # input interval below this share of a period: a fast camera
FAST_HOLD = 0.1
# The input model: its frame interval and its arrival phase are followed by exponential averages
# with these weights per result; its jitter is the average distance of a result from its predicted
# time, and JITTER_SPAN of it is taken as the latest a result comes.
SOURCE_SMOOTHING = 0.1
SOURCE_PHASE_GAIN = 0.2
JITTER_SPAN = 3.0
SOURCE_GAP = 2.5  # an interval this many times the input's: a pause, not a change of rate
# Render this far behind the grid (periods): the machine stalled; forget the lost slots.
STALL = 2.0
# After this many fillers in a row (no input, or a camera under 10 fps on 30) the next result
# re-anchors the grid on itself: the input's old phase says nothing about the new one.
REANCHOR_AFTER = 3


class SourceModel:
    """The input as the clock sees it: its frame interval, when its next result is due, its jitter.

    Learnt from the results that go out, counting those replaced by newer ones in between.
    """

    def __init__(self) -> None:
        self.period: float | None = None
        self.next: float | None = None  # when the next result should arrive
        self.jitter = 0.0  # mean distance of a result from its predicted time (seconds)
        self._last: float | None = None

    def arrived(self, t: float, replaced: int = 0) -> None:
        """A result that arrived at ``t`` went out; ``replaced`` newer-wins replacements before it."""
        if self._last is not None and t > self._last:
            interval = (t - self._last) / (1 + replaced)
            if self.period is None:
                self.period = interval
            elif interval > SOURCE_GAP * self.period:
                self.next = None  # the input paused (no face, a stalled camera): not its rate
            else:
                self.period += SOURCE_SMOOTHING * (interval - self.period)
        self._last = t
        if self.period is None:
            return
        predicted = None if self.next is None else self.next + replaced * self.period
        if predicted is None or abs(t - predicted) > self.period / 2:
            self.next = t + self.period  # first, or the input jumped: follow it from here
            return
        error = t - predicted
        self.jitter += SOURCE_SMOOTHING * (abs(error) - self.jitter)
        self.next = predicted + SOURCE_PHASE_GAIN * error + self.period

    def following(self, t: float) -> float | None:
        """When the result after one arriving at ``t`` should arrive."""
        if self.next is None or self.period is None:
            return None
        predicted = self.next + max(0, round((t - self.next) / self.period)) * self.period  # this one's
        if abs(t - predicted) > self.period / 2:
            return t + self.period
        return predicted + SOURCE_PHASE_GAIN * (t - predicted) + self.period

    def expected(self, after: float) -> float | None:
        """When the next result should arrive, if after ``after`` (else the input is late or gone)."""
        return self.next if self.next is not None and self.next > after else None

    @property
    def latest(self) -> float:
        """How late after its predicted time a result may still come (seconds)."""
        return JITTER_SPAN * self.jitter


class OutputClock:
    """Decides output times for one output rate; all times are ``time.monotonic()`` seconds.

    ``start`` is the time the first frame may go out.
    """

    def __init__(self, fps: float, start: float) -> None:
        self.period = 1.0 / fps
        self.source = SourceModel()
        self._origin = start  # the ideal clock: frame n at origin + n * period
        self._count = 0  # frames sent
        self._phase = 0.0  # the phase-locked loop's offset of the grid from the ideal clock (seconds)
        self._fillers = REANCHOR_AFTER  # fillers sent since the last fresh result
        self._last_out: float | None = None

    def release(self, arrived: float) -> float:
        """The earliest time a result that arrived at ``arrived`` may go out (``>= arrived``)."""
        p = self.period
        if self._fillers >= REANCHOR_AFTER:
            self._anchor(arrived)
        earliest = self._slot - LEAD * p
        if self._last_out is not None:
            earliest = max(earliest, self._last_out + MIN_GAP * p)
        following = self.source.following(arrived)
        if following is not None and following <= self._slot + (1 + LAG) * p:
            # The next result should take the next slot: going out so early that it could come more
            # than MAX_GAP later would force an extra filler in between (a frame over the rate).
            earliest = max(earliest, following + self.source.latest - MAX_GAP * p)
        if self._last_out is not None:  # never hold a result past the time a filler would go out
            earliest = min(earliest, self._last_out + MAX_GAP * p)
        return max(arrived, earliest)

    def filler_time(self) -> float:
        """When to re-render the newest state if no result is waiting by then."""
        p = self.period
        when = self._slot
        if self._last_out is None:
            return when
        expected = self.source.expected(self._last_out)
        if expected is not None:
            if expected <= when + LAG * p:  # due about now: worth waiting for
                when = max(when + LAG * p, expected + self.source.latest)
            elif expected < when + FILLER_ROOM * p:
                when = expected - FILLER_ROOM * p  # out of the way before the result comes
        return min(max(when, self._last_out + MIN_GAP * p), self._last_out + MAX_GAP * p)

    def sent(self, now: float, arrived: float | None = None, replaced: int = 0) -> int:
        """A frame went out at ``now``: fresh from a result that arrived at ``arrived``, or a filler
        (``None``). ``replaced``: results replaced by newer ones since the last fresh frame.
        Returns how many output frames were missed before it (gaps over 1.5 periods)."""
        p = self.period
        missed = 0
        if self._last_out is not None:
            gap = now - self._last_out
            missed = max(0, round(gap / p) - 1) if gap > 1.5 * p else 0
        if arrived is not None:
            self.source.arrived(arrived, replaced)
            source = self.source.period
            if source is not None and source < FAST_SOURCE * p:
                late = self._slot - LEAD * p - arrived - FAST_HOLD * p  # the window opened this much too late
                error = -((late + source / 2) % source - source / 2)
            else:
                error = arrived - self._slot - PHASE_TARGET * p
            step = max(-PHASE_STEP * p, min(PHASE_STEP * p, PHASE_GAIN * error))
            self._phase = max(-PHASE_RANGE * p, min(PHASE_RANGE * p, self._phase + step))
            self._fillers = 0
        else:
            self._fillers += 1
        self._last_out = now
        self._count += 1
        if now - self._slot > STALL * p:
            self._origin = now - (self._count - 1) * p - self._phase  # fell behind: the lost slots are gone
        return missed

    @property
    def _slot(self) -> float:
        """The ideal time of the next frame."""
        return self._origin + self._count * self.period + self._phase

    def _anchor(self, arrived: float) -> None:
        """Put the next slot where a result arriving at ``arrived`` lands on target."""
        self._phase = 0.0
        self._origin = arrived - PHASE_TARGET * self.period - self._count * self.period
