"""Colours as users write them (``#RRGGBB``, ``chroma``) and as the renderer takes them (0..1 sRGB)."""

from __future__ import annotations

CHROMA_GREEN: tuple[float, float, float] = (0.0, 0xB1 / 255.0, 0x40 / 255.0)  # #00b140, broadcast chroma green
DEFAULT_BACKGROUND: tuple[float, float, float] = (0.16, 0.18, 0.22)  # slate: calm behind any skin tone


def parse_colour(text: str) -> tuple[float, float, float]:
    """``#RRGGBB`` (the ``#`` optional), ``chroma`` or ``green`` -> (r, g, b) in 0..1.
    Raises ``ValueError`` with a message a user can act on."""
    if text.strip().lower() in ("chroma", "green"):
        return CHROMA_GREEN
    value = text.strip().lstrip("#")
    if len(value) != 6:
        raise ValueError(f"'{text}' is not a colour; write it as #RRGGBB, e.g. #00b140")
    try:
        r, g, b = (int(value[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
    except ValueError:
        raise ValueError(f"'{text}' is not a colour; write it as #RRGGBB") from None
    return r, g, b


def colour_hex(rgb: tuple[float, float, float]) -> str:
    """(r, g, b) in 0..1 -> ``#rrggbb``."""
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)
