"""The pixel size a PNG or JPEG claims in its header, read before anything is decoded.

A 268 KiB PNG can claim 16000x16000 (a gigabyte once decoded): callers check the claimed size
against their cap first, so a hostile file is refused before a single pixel is allocated.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but carry no size).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG or JPEG header, or None when ``data`` is neither (or the
    header is cut short)."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if marker in _SOF:
                if i + 9 > len(data):
                    return None
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return width, height
            i += 2 + length
    return None


def read_image_size(path, head_bytes: int = 1 << 16) -> tuple[int, int] | None:
    """``image_size`` of the file at ``path``, reading at most ``head_bytes`` of it."""
    with open(path, "rb") as file:
        return image_size(file.read(head_bytes))
