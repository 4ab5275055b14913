"""Decoding kiln's ThumbHash placeholders (https://evanw.github.io/thumbhash/) into a small PNG.

A port of the reference decoder (``thumbHashToRGBA``), the same one the Rust ``thumbhash`` crate
kiln encodes with implements, plus a minimal PNG writer, so templates can paint the placeholder
as a CSS background without JavaScript.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import zlib
from functools import lru_cache


def _decode_b64(value: str) -> bytes:
    value = value.strip()
    return base64.b64decode(value + "=" * (-len(value) % 4))


def _channel(hash_: bytes, start: int, index: list[int], nx: int, ny: int, scale: float):
    """Reads one channel's AC coefficients (4 bits each, low nibble first)."""
    ac = []
    for cy in range(ny):
        cx = 0 if cy else 1
        while cx * ny < nx * (ny - cy):
            i = index[0]
            bits = (hash_[start + (i >> 1)] >> ((i & 1) << 2)) & 15
            ac.append((bits / 7.5 - 1) * scale)
            index[0] = i + 1
            cx += 1
    return ac


def to_rgba(hash_: bytes) -> tuple[int, int, bytes]:
    """The placeholder image of a ThumbHash: width, height (at most 32) and RGBA pixels."""
    if len(hash_) < 5:
        raise ValueError("ThumbHash too short")
    header24 = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    header16 = hash_[3] | (hash_[4] << 8)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    is_landscape = bool(header16 >> 15)
    l_max = 5 if has_alpha else 7
    lx = max(3, l_max if is_landscape else header16 & 7)
    ly = max(3, header16 & 7 if is_landscape else l_max)
    a_dc, a_scale = ((hash_[5] & 15) / 15, (hash_[5] >> 4) / 15) if has_alpha else (1.0, 1.0)

    start = 6 if has_alpha else 5
    index = [0]
    try:
        l_ac = _channel(hash_, start, index, lx, ly, l_scale)
        p_ac = _channel(hash_, start, index, 3, 3, p_scale * 1.25)
        q_ac = _channel(hash_, start, index, 3, 3, q_scale * 1.25)
        a_ac = _channel(hash_, start, index, 5, 5, a_scale) if has_alpha else []
    except IndexError:
        raise ValueError("ThumbHash too short") from None

    # The approximate aspect ratio, from the header alone.
    ratio_lx = l_max if is_landscape else hash_[3] & 7
    ratio_ly = hash_[3] & 7 if is_landscape else l_max
    ratio = ratio_lx / ratio_ly if ratio_ly else 1.0
    if ratio > 1:
        w, h = 32, max(1, round(32 / ratio))
    else:
        w, h = max(1, round(32 * ratio)), 32

    nfx = max(lx, 5 if has_alpha else 3)
    nfy = max(ly, 5 if has_alpha else 3)
    cols = [[math.cos(math.pi / w * (x + 0.5) * cx) for cx in range(nfx)] for x in range(w)]
    rows = [[math.cos(math.pi / h * (y + 0.5) * cy) for cy in range(nfy)] for y in range(h)]
    out = bytearray()
    for y in range(h):
        fy = rows[y]
        for x in range(w):
            fx = cols[x]
            lum, p, q, a = l_dc, p_dc, q_dc, a_dc
            j = 0
            for cy in range(ly):
                fy2 = fy[cy] * 2
                cx = 0 if cy else 1
                while cx * ly < lx * (ly - cy):
                    lum += l_ac[j] * fx[cx] * fy2
                    j += 1
                    cx += 1
            j = 0
            for cy in range(3):
                fy2 = fy[cy] * 2
                for cx in range(0 if cy else 1, 3 - cy):
                    f = fx[cx] * fy2
                    p += p_ac[j] * f
                    q += q_ac[j] * f
                    j += 1
            if has_alpha:
                j = 0
                for cy in range(5):
                    fy2 = fy[cy] * 2
                    for cx in range(0 if cy else 1, 5 - cy):
                        a += a_ac[j] * fx[cx] * fy2
                        j += 1
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            out += bytes(int(min(1.0, max(0.0, c)) * 255) for c in (r, g, b, a))
    return w, h, bytes(out)


def _png(w: int, h: int, rgba: bytes) -> bytes:
    """A PNG of RGBA pixels (stored as RGB when every pixel is opaque)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    channels, color_type = 4, 6  # RGBA
    if all(a == 255 for a in rgba[3::4]):  # opaque: RGB is a quarter smaller
        rgb = bytearray(w * h * 3)
        for c in range(3):
            rgb[c::3] = rgba[c::4]
        rgba, channels, color_type = bytes(rgb), 3, 2
    stride = w * channels
    raw = b"".join(b"\x00" + rgba[y * stride : (y + 1) * stride] for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1024)
def data_url(placeholder: str) -> str | None:
    """A ``data:image/png`` URL of a base64 ThumbHash, or None when it cannot be decoded."""
    try:
        w, h, rgba = to_rgba(_decode_b64(placeholder))
    except (ValueError, IndexError, binascii.Error):
        return None
    return "data:image/png;base64," + base64.b64encode(_png(w, h, rgba)).decode("ascii")
