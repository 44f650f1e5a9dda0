"""Finding a rig's shape names among an avatar's morph targets, whatever the exporter's spelling.

Exporters spell the same shape many ways: ``eyeBlinkLeft``, ``EyeBlink_L``, ``eye_blink.L``,
``L_eyeBlink``, ``Eye Blink Left``, or behind a prefix (``blendShape1.jawOpen``,
``Face_mouthSmileLeft``). ``canonical`` folds case, separators and the side marker into one key
(``eyeblinkleft``); ``find_targets`` matches wanted names exactly on that key first, then as the
unique target whose key ends with it (a prefix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SIDE_LETTER_END = re.compile(r"[\s_.\-]([lr])$", re.IGNORECASE)
_SIDE_LETTER_START = re.compile(r"^([lr])[\s_.\-]", re.IGNORECASE)
_SIDE_WORD_END = re.compile(r"[\s_.\-]?(left|right)$", re.IGNORECASE)
_SIDE_WORD_START = re.compile(r"^(left|right)[\s_.\-]", re.IGNORECASE)
_SIDES = {"l": "left", "r": "right", "left": "left", "right": "right"}


def canonical(name: str) -> str:
    """One key per spelling: lower case, letters and digits only, the side (if any) as a last word."""
    stem, side = name.strip(), ""
    for pattern in (_SIDE_LETTER_END, _SIDE_WORD_END, _SIDE_LETTER_START, _SIDE_WORD_START):
        match = pattern.search(stem)
        if match:
            side = _SIDES[match.group(1).lower()]
            stem = stem[:match.start()] + stem[match.end():]
            break
    return re.sub(r"[^a-z0-9]", "", stem.lower()) + side


def find_targets(target_names: Iterable[str], wanted: Iterable[str]) -> dict[str, str]:
    """Wanted name -> the avatar's target name for it: the same canonical key, else the only target
    whose key ends with it (an exporter's prefix). The first target wins when two spell the same key."""
    by_key: dict[str, str] = {}
    for name in target_names:
        by_key.setdefault(canonical(name), name)
    matches: dict[str, str] = {}
    for name in wanted:
        key = canonical(name)
        if key in by_key:
            matches[name] = by_key[key]
            continue
        prefixed = [target for k, target in by_key.items() if k.endswith(key)]
        if len(prefixed) == 1:
            matches[name] = prefixed[0]
    return matches


__all__ = ["canonical", "find_targets"]
