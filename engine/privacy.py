"""Keep everything on this computer: switch off the usage reporting built into our libraries.

What sends, found by reading the installed libraries (mediapipe 1.2.3, onnxruntime-gpu 1.31.1):

* **onnxruntime** (Linux/macOS "1DS" telemetry): when the runtime initialises (at ``import``) it
  starts an uploader to ``https://mobile.events.data.microsoft.com/OneCollector/1.0``, writes a device
  id and an event queue (``onnxruntime.db``: OS, CPU, model names, error messages) to
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` and sends them in the background. The real switch
  is the environment variable ``ORT_DISABLE_TELEMETRY=1``: read once, at initialisation, and then
  nothing is created at all. ``onnxruntime.disable_telemetry_events()`` alone is not enough there: it
  keeps the uploader and its "ProcessInfo" event. On Windows the events go to ETW, which that call
  does switch off, so it is called too.
* **MediaPipe Tasks** (PyPI wheels of late 2025 on): creating any task (our Face Landmarker too)
  creates a usage logger that POSTs the task name, mode, OS, Python version and timings to
  ``https://play.googleapis.com/log`` through the libcurl linked into ``libmediapipe``. There is no
  switch: ``CreateTasksLogger`` always builds the HTTP client, and no option, environment variable or
  C function turns it off. So, once the library is loaded and before any task exists, the logger's
  URL constant is blanked in memory: curl then rejects the empty URL before any name lookup or
  connection. Only that one 32-byte constant is written, and only after checking it byte for byte;
  if the library differs, nothing is written and a warning says so (the no-network test fails then).
  Elsewhere it is only warned about, because the other wheels send differently (read in mediapipe
  1.2.3's macOS arm64 and Windows x64 wheels): macOS through NSURLSession, whose URL constant lies in
  ``__TEXT,__cstring`` (a segment whose maximum protection is r-x: it cannot be made writable), and
  Windows through WinINet (one copy of the URL, in ``.rdata``). Both take the system's proxy
  settings, not the ``https_proxy`` variables, so pointing those at a closed port (which does stop
  the Linux build's libcurl: it then only sends ``CONNECT play.googleapis.com:443`` to that port) is
  no way out there.

``keep_everything_local()`` does all of this; call it before onnxruntime is imported, and again once
mediapipe's tasks are imported (it is idempotent and cheap). ``quiet_native_logs(verbose)`` keeps
MediaPipe's absl and TFLite lines off the terminal unless ``--verbose``.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import struct
import sys
import threading

log = logging.getLogger(__name__)

ORT_SWITCH = "ORT_DISABLE_TELEMETRY"
MEDIAPIPE_USAGE_URL = b"https://play.googleapis.com/log\x00"
_URL_SYMBOL = b"_ZN9mediapipe5tasks4core7logging15google_internal12_GLOBAL__N_115kHttpLoggingUrlE"
_ANCHOR_SYMBOL = b"MpFaceLandmarkerCreate"  # exported: tells where the library was loaded
_ABSL_SET_MIN_LOG_LEVEL = b"_ZN4absl14SetMinLogLevelENS_18LogSeverityAtLeastE"
_TFLITE_GET_SEVERITY = b"_ZN6tflite16logging_internal13MinimalLogger21GetMinimumLogSeverityEv"
_TFLITE_SET_SEVERITY = b"_ZN6tflite16logging_internal13MinimalLogger21SetMinimumLogSeverityENS_11LogSeverityE"
_ABSL_ERROR = 2  # absl::LogSeverityAtLeast::kError
_TFLITE_INFO, _TFLITE_ERROR = 1, 3  # tflite::LogSeverity (VERBOSE=0, INFO=1, WARNING=2, ERROR=3)

_lock = threading.Lock()
_quiet = True  # native libraries' info/warning lines: off unless quiet_native_logs(verbose=True)
_mediapipe_done = False


def keep_everything_local() -> None:
    """Switch off onnxruntime's and MediaPipe's usage reporting. Idempotent; cheap after the first call.

    Call it before ``import onnxruntime`` (the switch is read only then), and after mediapipe's tasks
    are imported and before a task is created (the library must be loaded to be muted)."""
    # Forced, not setdefault: "nothing leaves your computer" is not the user's environment's call.
    os.environ[ORT_SWITCH] = "1"
    ort = sys.modules.get("onnxruntime")
    if ort is not None and hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()  # Windows ETW; on Linux the environment switch above is the one
    if "mediapipe.tasks.python.core.mediapipe_c_bindings" in sys.modules:
        _mute_mediapipe()


def quiet_native_logs(verbose: bool) -> None:
    """Keep MediaPipe/TFLite/absl info and warning lines off stderr unless ``verbose``; errors still show."""
    global _quiet
    _quiet = not verbose
    if _quiet:
        # Read by glog/TensorFlow builds (mediapipe 0.10.x wheels); mediapipe 1.x reads neither (the
        # names are not in libmediapipe), so its levels are also set directly in _mute_mediapipe().
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _mediapipe_done:
        _set_mediapipe_log_levels(_load_mediapipe())


def _load_mediapipe() -> ctypes.CDLL:
    from mediapipe.tasks.python.core import mediapipe_c_bindings

    return mediapipe_c_bindings.load_raw_library()  # loads once per process, shared with the tasks


def _mute_mediapipe() -> None:
    global _mediapipe_done
    with _lock:
        if _mediapipe_done:
            return
        _mediapipe_done = True
        lib = _load_mediapipe()
        if not sys.platform.startswith("linux"):
            log.warning("MediaPipe's usage logger is only muted on Linux; it may contact play.googleapis.com")
            return
        try:
            symbols = _ElfSymbols(lib._name)
            base = ctypes.cast(getattr(lib, _ANCHOR_SYMBOL.decode()), ctypes.c_void_p).value - symbols.value(_ANCHOR_SYMBOL)
            _blank_usage_url(symbols, base)
            if _quiet:
                _set_mediapipe_log_levels(lib, symbols, base)
        except (OSError, ValueError, struct.error) as exc:
            log.warning("Could not mute MediaPipe's usage logger (%s); it may contact play.googleapis.com", exc)


def _blank_usage_url(symbols: _ElfSymbols, base: int) -> None:
    vaddr, size = symbols.value(_URL_SYMBOL), symbols.size(_URL_SYMBOL)
    address = base + vaddr
    current = ctypes.string_at(address, len(MEDIAPIPE_USAGE_URL))
    if current == b"\x00" * len(MEDIAPIPE_USAGE_URL):
        return
    if size != len(MEDIAPIPE_USAGE_URL) or current != MEDIAPIPE_USAGE_URL:
        raise ValueError("unexpected usage-logger URL constant in this mediapipe build")
    page = mmap.PAGESIZE
    start = address & ~(page - 1)
    length = (address + size - start + page - 1) & ~(page - 1)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    prot_read, prot_write, prot_exec = 1, 2, 4
    if libc.mprotect(start, length, prot_read | prot_write) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    try:
        ctypes.memset(address, 0, size)  # "" as URL: curl fails before resolving or connecting
    finally:
        flags = symbols.segment_flags(vaddr)  # ELF p_flags: X=1, W=2, R=4
        libc.mprotect(start, length, (prot_read if flags & 4 else 0) | (prot_write if flags & 2 else 0)
                      | (prot_exec if flags & 1 else 0))
    log.info("MediaPipe's usage logger is muted (no reports to play.googleapis.com)")


def _set_mediapipe_log_levels(lib: ctypes.CDLL, symbols: _ElfSymbols | None = None, base: int | None = None) -> None:
    """absl: errors only; TFLite: errors only. These functions are not exported, hence by address."""
    if not sys.platform.startswith("linux"):
        return
    try:
        if symbols is None or base is None:
            symbols = _ElfSymbols(lib._name)
            base = ctypes.cast(getattr(lib, _ANCHOR_SYMBOL.decode()), ctypes.c_void_p).value - symbols.value(_ANCHOR_SYMBOL)
        ctypes.CFUNCTYPE(None, ctypes.c_int)(base + symbols.value(_ABSL_SET_MIN_LOG_LEVEL))(_ABSL_ERROR)
        # Only when the severity scale is the one we know (its default, INFO, reads 1).
        if ctypes.CFUNCTYPE(ctypes.c_int)(base + symbols.value(_TFLITE_GET_SEVERITY))() == _TFLITE_INFO:
            ctypes.CFUNCTYPE(None, ctypes.c_int)(base + symbols.value(_TFLITE_SET_SEVERITY))(_TFLITE_ERROR)
    except (OSError, ValueError, struct.error) as exc:
        log.info("MediaPipe's log level is unchanged (%s)", exc)


class _ElfSymbols:
    """The full symbol table (``.symtab``) of a 64-bit little-endian ELF file, looked up by name."""

    def __init__(self, path: str) -> None:
        import numpy as np

        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        m = self._map
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
        phoff, shoff = struct.unpack_from("<QQ", m, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", m, 0x36)
        self._segments = []
        for i in range(phnum):
            p_type, p_flags, _off, p_vaddr, _paddr, _filesz, p_memsz = struct.unpack_from("<IIQQQQQ", m, phoff + i * phentsize)
            if p_type == 1:  # PT_LOAD
                self._segments.append((p_vaddr, p_vaddr + p_memsz, p_flags))
        sections = [struct.unpack_from("<IIQQQQIIQQ", m, shoff + i * shentsize) for i in range(shnum)]
        symtab = next((s for s in sections if s[1] == 2), None)  # SHT_SYMTAB
        if symtab is None:
            raise ValueError(f"{path} has no symbol table")
        strtab = sections[symtab[6]]
        self._str_start, self._str_end = strtab[4], strtab[4] + strtab[5]
        dtype = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                          ("value", "<u8"), ("size", "<u8")])
        self._symbols = np.frombuffer(m, dtype=dtype, count=symtab[5] // dtype.itemsize, offset=symtab[4])

    def _find(self, name: bytes):
        import numpy as np

        position = self._map.find(name + b"\x00", self._str_start, self._str_end)
        while position != -1:
            hits = np.flatnonzero(self._symbols["name"] == position - self._str_start)
            if hits.size:
                return self._symbols[hits[0]]
            position = self._map.find(name + b"\x00", position + 1, self._str_end)
        raise ValueError(f"symbol {name.decode()} not found")

    def value(self, name: bytes) -> int:
        return int(self._find(name)["value"])

    def size(self, name: bytes) -> int:
        return int(self._find(name)["size"])

    def segment_flags(self, vaddr: int) -> int:
        return next((flags for start, end, flags in self._segments if start <= vaddr < end), 4)
