"""Tiny but real recordings: a 440 Hz tone, 8 kHz mono 16-bit PCM, as MixMonitor's .wav."""

from __future__ import annotations

import functools
import math
import struct
import wave
from pathlib import Path

RATE = 8000


@functools.lru_cache(maxsize=8)
def _tone(milliseconds: int) -> bytes:
    count = RATE * milliseconds // 1000
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(count))
    return struct.pack(f"<{count}h", *samples)


def write_tone(path: str | Path, seconds: float) -> Path:
    """Write a tone of `seconds` (kept between 0.5 and 1 s, to stay small) and return the path."""
    # Rounded to 100 ms so the cache of generated tones stays tiny.
    milliseconds = round(min(max(seconds, 0.5), 1.0) * 10) * 100
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(_tone(milliseconds))
    return path
