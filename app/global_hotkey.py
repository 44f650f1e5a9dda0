"""A system-wide hotkey: Stop works while Zoom or Teams has the focus, not only avatarcam.

X11: ``XGrabKey`` on the root window through python-xlib (pure Python), grabbed with and without
Num Lock and Caps Lock so they do not get in the way. Windows: ``RegisterHotKey`` through ctypes,
on a thread with its own message loop. Elsewhere (macOS, Wayland), or when another program owns
the combination, ``start`` returns False and ``error`` says why; the app then keeps its
application shortcut and the tray menu. The hotkey's thread never touches Qt widgets: it emits
``triggered``, which Qt queues to the UI thread.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

MODIFIERS = ("ctrl", "shift", "alt", "meta")


def parse_sequence(text: str) -> tuple[frozenset[str], str]:
    """``"Ctrl+Shift+S"`` -> ({"ctrl", "shift"}, "s"). Raises ValueError for anything else."""
    parts = [p.strip().lower() for p in text.split("+") if p.strip()]
    mods = frozenset(p for p in parts if p in MODIFIERS)
    keys = [p for p in parts if p not in MODIFIERS]
    if len(keys) != 1 or not mods:
        raise ValueError(f"'{text}' is not a modifier+key combination such as Ctrl+Shift+S")
    return mods, keys[0]


class GlobalHotkey(QObject):
    """One system-wide key combination. ``stop`` is idempotent."""

    triggered = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.error = ""
        self.sequence = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, sequence: str) -> bool:
        """Grab ``sequence`` system-wide (replacing a previous one); False with ``error`` if not possible."""
        self.stop()
        self.sequence, self.error = sequence, ""
        try:
            mods, key = parse_sequence(sequence)
        except ValueError as exc:
            self.error = str(exc)
            return False
        if sys.platform == "win32":
            target = self._windows_loop
        elif os.environ.get("DISPLAY"):
            target = self._x11_loop
        else:
            self.error = ("system-wide shortcuts need X11 or Windows here; on macOS and Wayland use the tray "
                          "menu or the shortcut inside avatarcam")
            return False
        ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=target, args=(mods, key, ready), name="avatarcam-hotkey", daemon=True)
        self._thread.start()
        ready.wait(5.0)
        if self.error:
            self._thread.join(timeout=2.0)
            self._thread = None
            return False
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # --- X11 ---------------------------------------------------------------------------------

    def _x11_loop(self, mods: frozenset[str], key: str, ready: threading.Event) -> None:
        try:
            from Xlib import XK, X, display, error
        except ImportError:
            self.error = "python-xlib is not installed"
            ready.set()
            return
        try:
            conn = display.Display()
        except Exception as exc:
            self.error = f"cannot reach the X server ({exc})"
            ready.set()
            return
        root = conn.screen().root
        keysym = next((k for k in map(XK.string_to_keysym, (key, key.upper(), key.capitalize())) if k), 0)
        keycode = conn.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            self.error = f"the key '{key}' does not exist on this keyboard layout"
            ready.set()
            conn.close()
            return
        mask = 0
        for name, bit in (("ctrl", X.ControlMask), ("shift", X.ShiftMask), ("alt", X.Mod1Mask), ("meta", X.Mod4Mask)):
            if name in mods:
                mask |= bit
        locks = (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)  # Caps Lock, Num Lock
        catcher = error.CatchError(error.BadAccess)
        for lock in locks:
            root.grab_key(keycode, mask | lock, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
        conn.sync()
        if catcher.get_error():
            self.error = "another program already uses this combination"
            ready.set()
            conn.close()
            return
        ready.set()
        try:
            while not self._stop.is_set():
                if not conn.pending_events():
                    select.select([conn.fileno()], [], [], 0.1)  # wake up to notice stop()
                    continue
                event = conn.next_event()
                if event.type == X.KeyPress and event.detail == keycode and (event.state & mask) == mask:
                    self.triggered.emit()
        finally:
            for lock in locks:
                root.ungrab_key(keycode, mask | lock)
            conn.close()

    # --- Windows -----------------------------------------------------------------------------

    def _windows_loop(self, mods: frozenset[str], key: str, ready: threading.Event) -> None:
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.windll.user32  # type: ignore[attr-defined]
        mask = 0x4000  # MOD_NOREPEAT
        for name, bit in (("alt", 0x1), ("ctrl", 0x2), ("shift", 0x4), ("meta", 0x8)):
            if name in mods:
                mask |= bit
        vk = user32.VkKeyScanW(ord(key[0])) & 0xFF if len(key) == 1 else 0
        if not vk or not user32.RegisterHotKey(None, 1, mask, vk):
            self.error = "Windows refused the combination (another program may use it)"
            ready.set()
            return
        ready.set()
        message = wintypes.MSG()
        try:
            while not self._stop.is_set():
                if user32.PeekMessageW(ctypes.byref(message), None, 0, 0, 1):  # PM_REMOVE
                    if message.message == 0x0312:  # WM_HOTKEY
                        self.triggered.emit()
                else:
                    self._stop.wait(0.05)
        finally:
            user32.UnregisterHotKey(None, 1)
