"""``avatarcam bench --video CLIP --rates 15,24,25,30,60``: latency at other camera rates.

Webcams rarely deliver exactly the output rate (24 or 25 fps, 15 in low light). The clip is
re-encoded at each rate into a temporary folder (the same pictures, resampled in time, H.264), then
each copy runs through the live pipeline exactly like ``bench`` does. The table shows, per rate,
the source's measured rate, end-to-end latency, how long results waited for the output clock
(``hold``), the output rate and the missed output frames, and checks the acceptance: every rate's
e2e p95 within ``P95_SPREAD_MS`` of the 30 fps p95, no missed frame, output within 1 % of its rate.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av

from engine.commands.bench import WARMUP_S, run_benchmark
from engine.errors import AvatarcamError

if TYPE_CHECKING:
    from engine.session import SessionSpec

REFERENCE_FPS = 30.0
P95_SPREAD_MS = 3.0
RATE_TOLERANCE = 0.01


def reencode(source: Path, fps: float, out: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``source`` as an H.264 file at ``fps``: output frame k shows the
    source frame on screen at time k / fps. Raises ``AvatarcamError`` when the file cannot be read."""
    try:
        with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
            video = inp.streams.video[0]
            rate = Fraction(fps).limit_denominator(1001)
            stream = dst.add_stream("libx264", rate=rate)
            stream.width, stream.height = video.codec_context.width, video.codec_context.height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            count = int(seconds * fps)
            index = 0
            shown = None
            t0 = None
            for frame in inp.decode(video):
                t = float(frame.time or 0.0)
                t0 = t if t0 is None else t0
                while shown is not None and index < count and index / fps < t - t0:
                    index = _write(dst, stream, shown, index, rate)
                shown = frame
                if index >= count:
                    break
            while shown is not None and index < count:  # the clip is shorter: hold its last picture
                index = _write(dst, stream, shown, index, rate)
            for packet in stream.encode():
                dst.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        raise AvatarcamError(f"Could not re-encode '{source}' at {fps:g} fps ({exc}).",
                             "Use a video FFmpeg can decode (e.g. MP4 with H.264).") from exc
    return out


def _write(dst, stream, frame: av.VideoFrame, index: int, rate: Fraction) -> int:
    picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
    picture.pts = index
    picture.time_base = 1 / rate
    for packet in stream.encode(picture):
        dst.mux(packet)
    return index + 1


def run_rates(spec: SessionSpec, rates: list[float], seconds: float) -> dict:
    """Run ``spec``'s clip at each of ``rates``; the result is the ``bench --rates --json`` object."""
    if spec.path is None:
        raise AvatarcamError("--rates needs a clip to re-encode.", "Add --video PATH.")
    results = []
    with tempfile.TemporaryDirectory(prefix="avatarcam-rates-") as folder:
        for fps in rates:
            clip = reencode(spec.path, fps, Path(folder) / f"clip_{fps:g}fps.mp4", seconds + WARMUP_S + 2.0)
            result = run_benchmark(replace(spec, path=clip), seconds, raw_frames=0)
            results.append({"camera_fps": fps, **result, "source": f"{spec.path} at {fps:g} fps"})
    return {"rates": results, "acceptance": acceptance(results)}


def acceptance(results: list[dict]) -> dict:
    """The three checks, each ``True``/``False`` (None when there is no 30 fps reference run)."""
    reference = next((r for r in results if r["camera_fps"] == REFERENCE_FPS), None)
    spread = None
    if reference is not None and reference.get("e2e_ms_p95") is not None:
        spread = max(abs(r.get("e2e_ms_p95", float("inf")) - reference["e2e_ms_p95"]) for r in results)
    return {"p95_spread_ms": None if spread is None else round(spread, 2),
            "p95_within_3_ms": None if spread is None else spread <= P95_SPREAD_MS,
            "no_missed_frames": all(r["frames_missed"] == 0 for r in results),
            "output_rate_within_1_percent": all(abs(r["fps_out"] - r["fps"]) <= RATE_TOLERANCE * r["fps"]
                                                for r in results)}


def format_rates(result: dict) -> str:
    runs = result["rates"]
    first = runs[0]
    lines = [f"avatarcam bench --rates: {first['source'].rsplit(' at ', 1)[0]} -> "
             f"{first['size']}@{first['fps']:g}, {first['sink']}", "",
             f"  {'camera':>7}{'measured':>10}{'e2e p50':>9}{'e2e p95':>9}{'hold p50':>10}{'hold p95':>10}"
             f"{'fps out':>9}{'missed':>8}{'reused':>8}{'cpu':>7}"]
    for r in runs:
        lines.append(f"  {r['camera_fps']:>7g}{r.get('source_fps', 0):>10.2f}{r.get('e2e_ms_p50', 0):>9.1f}"
                     f"{r.get('e2e_ms_p95', 0):>9.1f}{r.get('hold_ms_p50', 0):>10.1f}{r.get('hold_ms_p95', 0):>10.1f}"
                     f"{r['fps_out']:>9.2f}{r['frames_missed']:>8}{r.get('frames_reused', 0):>8}{r['cpu_cores']:>7.2f}")
    checks = result["acceptance"]
    lines += ["", f"  e2e p95 within {P95_SPREAD_MS:g} ms of the 30 fps run: "
                  f"{_verdict(checks['p95_within_3_ms'])} (spread {checks['p95_spread_ms']} ms)",
              f"  no missed output frame: {_verdict(checks['no_missed_frames'])}",
              f"  output rate within 1 %: {_verdict(checks['output_rate_within_1_percent'])}"]
    return "\n".join(lines)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "NO"
