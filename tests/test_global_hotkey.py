"""The system-wide Stop hotkey on a real X server (Xvfb), with key presses faked through XTEST."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from app.global_hotkey import GlobalHotkey, parse_sequence


def test_sequences_parse_and_bad_ones_are_refused():
    assert parse_sequence("Ctrl+Shift+S") == (frozenset({"ctrl", "shift"}), "s")
    assert parse_sequence("alt+F12") == (frozenset({"alt"}), "f12")
    for bad in ("S", "Ctrl+Shift", "Ctrl+A+B", ""):
        with pytest.raises(ValueError):
            parse_sequence(bad)


@pytest.fixture
def x_display(monkeypatch):
    """A private Xvfb server; the Qt side stays offscreen, only the hotkey talks to X."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb)")
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{number}", "-nolisten", "tcp"], stderr=subprocess.DEVNULL)
    socket = f"/tmp/.X11-unix/X{number}"
    deadline = time.monotonic() + 10
    while not os.path.exists(socket):
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.02)
    monkeypatch.setenv("DISPLAY", f":{number}")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=5)


def press(display_name: str, *keys: str) -> None:
    """Press and release ``keys`` together, as a user would, through the XTEST extension."""
    from Xlib import XK, X, display
    from Xlib.ext import xtest

    conn = display.Display(display_name)
    codes = [conn.keysym_to_keycode(XK.string_to_keysym(k)) for k in keys]
    for code in codes:
        xtest.fake_input(conn, X.KeyPress, code)
    for code in reversed(codes):
        xtest.fake_input(conn, X.KeyRelease, code)
    conn.sync()
    conn.close()


def test_the_combination_fires_system_wide_and_only_it(qtbot, x_display):
    hotkey = GlobalHotkey()
    assert hotkey.start("Ctrl+Shift+S"), hotkey.error
    try:
        with qtbot.waitSignal(hotkey.triggered, timeout=5_000):
            press(x_display, "Control_L", "Shift_L", "s")
        with qtbot.assertNotEmitted(hotkey.triggered, wait=300):
            press(x_display, "Control_L", "s")  # not the whole combination
    finally:
        hotkey.stop()
    assert not hotkey.active


def test_a_combination_another_program_holds_is_reported(qtbot, x_display):
    first, second = GlobalHotkey(), GlobalHotkey()
    assert first.start("Ctrl+Alt+K")
    try:
        assert not second.start("Ctrl+Alt+K")
        assert "another program" in second.error
    finally:
        first.stop()


def test_without_a_display_it_says_why(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    hotkey = GlobalHotkey()
    if os.name == "nt":
        pytest.skip("Windows has no DISPLAY")
    assert not hotkey.start("Ctrl+Shift+S")
    assert "tray" in hotkey.error
