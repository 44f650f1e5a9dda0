"""The app's persisted settings: consent toggles, devices, avatar, overlay, shortcut, tray.

One JSON file, ``<config>/settings.json`` (``engine.profiles.config_dir()``: the platform's config
folder, or ``$AVATARCAM_CONFIG_DIR``). Qt-free. Every consent starts off; unknown or damaged files
fall back to the defaults (never a crash), and writes are atomic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from engine.profiles import config_dir

log = logging.getLogger(__name__)

# Consent toggles, in the order the dialog shows them: (key, label, what it means).
CONSENTS: tuple[tuple[str, str, str], ...] = (
    ("camera", "Camera", "Read your webcam to track your face. Frames stay in memory and are never stored."),
    ("microphone", "Microphone", "Listen for speech to drive lip-sync and voice emotion. Audio is never stored."),
    ("emotion", "Emotion analysis", "Estimate your emotion from face and voice to colour the avatar's expression."),
    ("websocket", "WebSocket stream", "Send avatar and emotion data to programs on this computer (localhost)."),
    ("speak", "Speak API", "Let programs on this computer (an assistant, a meeting bot) make the avatar say their "
     "audio, played on the speech output chosen in Settings. Runs on the WebSocket stream, with its token."),
    ("vmc", "VMC protocol", "Send the avatar's pose over the network to VSeeFace, Warudo or VNyan."),
    ("recording", "Recording to file", "Save the avatar video (not your camera picture) as an MP4 file."),
)
CONSENT_KEYS = tuple(key for key, _, _ in CONSENTS)
DEFAULT_STOP_SHORTCUT = "Ctrl+Shift+S"
MAX_RECENT = 8
# Background choices: label -> #RRGGBB ("" = the renderer's default).
BACKGROUNDS: tuple[tuple[str, str], ...] = (
    ("Slate (default)", ""),
    ("Light grey", "#d9dce1"),
    ("Green screen", "#00b140"),
    ("Blue screen", "#0047bb"),
    ("Black", "#000000"),
)


@dataclass
class AppSettings:
    """Everything the app remembers between runs."""

    consent: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(CONSENT_KEYS, False))
    first_run_done: bool = False
    source: str = "auto"  # "auto" (camera if there is one, else demo), "camera", "demo"
    camera: int = 0
    size: tuple[int, int] = (1280, 720)
    fps: float = 30.0
    microphone: str = ""  # "" = the system default
    virtual_camera_device: str = ""  # "" = the first that works
    avatar: str = "default"
    recent_avatars: list[str] = field(default_factory=list)
    background: str = ""
    expressiveness: float = 1.0  # 0..2; the emotion layer scales by it
    profile: str = ""  # calibration profile in use ("" = none)
    overlay: bool = False
    burn_in_overlay: bool = False
    self_view: bool = False
    stop_shortcut: str = DEFAULT_STOP_SHORTCUT
    tray_icon: bool = True
    close_to_tray: bool = False
    recording_folder: str = ""  # "" = the user's videos folder
    websocket_port: int = 8765  # the WebSocket stream listens on 127.0.0.1 at this port
    vmc_target: str = "127.0.0.1:39539"  # where the VMC stream goes (VSeeFace's default port)
    speech_output: str = ""  # where the speak API's audio plays: "" the default output, "none" nowhere, or a name
    enhance: str = ""  # an enhancement model (docs/ENHANCE.md) run on every frame; "" = off

    def allowed(self, key: str) -> bool:
        return bool(self.consent.get(key, False))

    def add_recent(self, path: str) -> None:
        if path in ("", "default"):
            return
        self.recent_avatars = [path] + [p for p in self.recent_avatars if p != path][: MAX_RECENT - 1]

    @staticmethod
    def default_path() -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls, path: Path | None = None) -> AppSettings:
        path = path or cls.default_path()
        settings = cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return settings
        except (OSError, ValueError) as exc:
            log.warning("settings %s unreadable (%s); using defaults", path, exc)
            return settings
        known = {f.name for f in fields(cls)}
        for key, value in data.items() if isinstance(data, dict) else ():
            if key not in known:
                continue
            if key == "consent" and isinstance(value, dict):
                settings.consent.update({k: bool(v) for k, v in value.items() if k in CONSENT_KEYS})
            elif key == "size" and isinstance(value, (list, tuple)) and len(value) == 2:
                settings.size = (int(value[0]), int(value[1]))
            else:
                setattr(settings, key, value)
        return settings

    def save(self, path: Path | None = None) -> None:
        path = path or self.default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:  # a read-only config folder must not take the app down
            log.warning("cannot save settings to %s: %s", path, exc)
