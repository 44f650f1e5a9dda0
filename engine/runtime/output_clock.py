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
  on schedule, or earlier, so that rendering the filler is over before the next camera frame is
  being tracked: on two cores a filler drawn while the tracker runs slows both, and the next result
  waits for the render thread. Where no such window exists (24 and 25 fps: a result every 1.2
  periods leaves ~13 ms free after each one) ``filler_renders`` says no, and the render loop sends
  the last frame again instead of drawing it anew: nothing new was tracked in between anyway;
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
# Until the render loop has reported real times: how long a render takes, and how long before a
# result arrives its camera frame starts being tracked (in periods; 16 and 11 ms on the reference).
RENDER_GUESS = 0.5
TRACK_GUESS = 0.33
WORK_SMOOTHING = 0.1  # weight of each new render or tracking time in their averages
QUIET_MARGIN = 0.15  # periods kept free between a filler's render and the next tracking (render jitter)
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
        self.work: float | None = None  # how long before a result arrives its frame is being tracked
        self._last: float | None = None

    def arrived(self, t: float, replaced: int = 0, captured: float | None = None) -> None:
        """A result that arrived at ``t`` went out; ``replaced`` newer-wins replacements before it;
        ``captured``: when its camera frame was taken (tracking ran from then on)."""
        if captured is not None and captured <= t:
            self.work = t - captured if self.work is None else self.work + WORK_SMOOTHING * (t - captured - self.work)
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
        self.render_s = RENDER_GUESS * self.period  # how long a render takes (average)

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
        """When to fill the gap if no result is waiting by then."""
        p = self.period
        when = self._slot
        if self._last_out is None:
            return when
        expected = self.source.expected(self._last_out)
        if expected is not None:
            if expected <= when + LAG * p:  # due about now: worth waiting for
                when = max(when + LAG * p, expected + self.source.latest)
            elif when > self._quiet_until(expected):  # drawn out of the way of the next result's tracking
                when = max(self._quiet_until(expected), expected + self.source.latest - MAX_GAP * p)
        return min(max(when, self._last_out + MIN_GAP * p), self._last_out + MAX_GAP * p)

    def filler_renders(self, now: float) -> bool:
        """Whether a filler going out at ``now`` may be drawn anew: its render ends before the next
        result's camera frame is being tracked. If not, the last frame is sent again (cheap), so the
        render thread is idle when that result comes and the tracker has the cores to itself."""
        expected = self.source.expected(now)
        return expected is None or now <= self._quiet_until(expected)

    def rendered(self, seconds: float) -> None:
        """A frame took ``seconds`` to animate and draw."""
        self.render_s += WORK_SMOOTHING * (seconds - self.render_s)

    def _quiet_until(self, expected: float) -> float:
        """The latest start of a render that is over before a result expected at ``expected`` is
        being tracked."""
        work = self.source.work if self.source.work is not None else TRACK_GUESS * self.period
        return expected - work - self.render_s - QUIET_MARGIN * self.period

    def sent(self, now: float, arrived: float | None = None, replaced: int = 0, captured: float | None = None) -> int:
        """A frame went out at ``now``: fresh from a result that arrived at ``arrived`` (its camera
        frame taken at ``captured``), or a filler (``None``). ``replaced``: results replaced by newer
        ones since the last fresh frame. Returns how many output frames were missed before it (gaps
        over 1.5 periods)."""
        p = self.period
        missed = 0
        if self._last_out is not None:
            gap = now - self._last_out
            missed = max(0, round(gap / p) - 1) if gap > 1.5 * p else 0
        if arrived is not None:
            self.source.arrived(arrived, replaced, captured)
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


# A camera faster than the output: frames are tracked at the output rate. The credit grows by one
# per output period of camera time, a frame is tracked when the credit reaches ADMIT (a frame a
# little early still counts) and spends one; the credit is capped at CREDIT_CAP so that a rate
# between one and two times the output (45 fps on 30) still gives one result per output frame.
ADMIT = 0.8
CREDIT_CAP = 1.5


class TrackingGate:
    """Which camera frames are worth tracking: all of them, unless the camera is faster than the output.

    A 60 fps camera on a 30 fps output gives two results per output frame, and one of them is
    replaced before anyone sees it: tracking it costs a third of a core for nothing and slows the
    renderer that shares the cores. Once the camera's frame interval is measured below
    ``FAST_SOURCE`` of an output period, frames are admitted at the output rate.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.skipped = 0  # frames not tracked
        self._interval: float | None = None
        self._last: float | None = None
        self._credit = 1.0

    def admit(self, t_capture: float) -> bool:
        """Whether to track the camera frame taken at ``t_capture`` (called for each frame in turn)."""
        if self._last is not None and t_capture > self._last:
            dt = t_capture - self._last
            self._interval = dt if self._interval is None else self._interval + SOURCE_SMOOTHING * (dt - self._interval)
            self._credit = min(self._credit + dt / self.period, CREDIT_CAP)
        self._last = t_capture
        if self._interval is None or self._interval >= FAST_SOURCE * self.period or self._credit >= ADMIT:
            self._credit = max(self._credit - 1.0, ADMIT - 1.0)
            return True
        self.skipped += 1
        return False
