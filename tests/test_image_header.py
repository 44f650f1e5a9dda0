"""Image sizes read from the header, before any decoding: PNG, JPEG and WebP (lossy and lossless)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.capture.image_header import image_size


@pytest.mark.parametrize("ext, params", [(".png", []), (".jpg", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                                         (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])])  # 101: lossless
def test_the_header_gives_the_size_an_encoder_wrote(ext, params):
    image = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, image, params)
    assert ok
    assert image_size(encoded.tobytes()) == (53, 37)


def test_other_or_truncated_data_has_no_size():
    assert image_size(b"GIF89a....") is None
    assert image_size(b"\x89PNG\r\n\x1a\n\0\0") is None
    assert image_size(b"") is None
